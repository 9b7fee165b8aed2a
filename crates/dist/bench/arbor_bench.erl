%% The BEAM side of examples/dist_bench.rs: a counting echo server, and the timed loops
%% that a BEAM node runs against a server on another node (arbor's or a BEAM's).
-module(arbor_bench).
-behaviour(gen_server).
-export([start/1, init/1, handle_call/3, handle_cast/2, handle_info/2]).
-export([call_latency_pair/4, cast_throughput/3, flood_call_latency/3]).

start(Name) ->
    {ok, Pid} = gen_server:start({local, Name}, ?MODULE, 0, []),
    Pid.

init(N) -> {ok, N}.

handle_call(count, _From, N) -> {reply, N, N};
handle_call(Req, _From, N) -> {reply, Req, N}.

handle_cast(_Msg, N) -> {noreply, N + 1}.

handle_info(_Msg, N) -> {noreply, N + 1}.

%% Calls A and B N times each, alternating one call to A and one to B, after W warm-up
%% calls to each, so that a change in the machine's load meets both alike; returns
%% {{P50, P99, Mean}, {P50, P99, Mean}} in microseconds, A's then B's.
call_latency_pair(A, B, W, N) ->
    _ = [{gen_server:call(A, {ping, I}), gen_server:call(B, {ping, I})} || I <- lists:seq(1, W)],
    Time = fun(Dest, I) ->
                   T0 = erlang:monotonic_time(nanosecond),
                   {ping, I} = gen_server:call(Dest, {ping, I}),
                   erlang:monotonic_time(nanosecond) - T0
           end,
    Pairs = [{Time(A, I), Time(B, I)} || I <- lists:seq(1, N)],
    {summary([Ta || {Ta, _} <- Pairs]), summary([Tb || {_, Tb} <- Pairs])}.

summary(Ts) ->
    N = length(Ts),
    S = lists:sort(Ts),
    P = fun(Q) -> lists:nth(max(1, round(Q * N)), S) / 1000 end,
    {P(0.5), P(0.99), lists:sum(Ts) / N / 1000}.

%% Casts N messages to Dest, then one call (answered after every cast before it is
%% handled); returns messages per second.
cast_throughput(Dest, N, Msg) ->
    T0 = erlang:monotonic_time(nanosecond),
    cast_loop(Dest, N, Msg),
    _ = gen_server:call(Dest, count, 60000),
    N / ((erlang:monotonic_time(nanosecond) - T0) / 1.0e9).

cast_loop(_Dest, 0, _Msg) -> ok;
cast_loop(Dest, N, Msg) -> gen_server:cast(Dest, Msg), cast_loop(Dest, N - 1, Msg).

%% Sequential calls to Echo while another process of this node floods Sink (on the same
%% node as Echo, so over the same connection) with casts (see flood/1); returns {P50, P99, Mean} of the
%% calls in microseconds. The flood runs from before the first call to after the last.
flood_call_latency(Sink, Echo, N) ->
    Flooder = spawn_link(fun() -> flood(Sink) end),
    _ = [gen_server:call(Echo, {ping, I}) || I <- lists:seq(1, 100)],
    Ts = [begin
              T0 = erlang:monotonic_time(nanosecond),
              {ping, I} = gen_server:call(Echo, {ping, I}),
              erlang:monotonic_time(nanosecond) - T0
          end || I <- lists:seq(1, N)],
    unlink(Flooder),
    exit(Flooder, kill),
    %% (after every cast the flood sent: the same connection keeps their order)
    _ = gen_server:call(Sink, count, 60000),
    summary(Ts).

%% 100 casts a millisecond (the BEAM's timer resolution), about 100,000 a second: a flood
%% the receiver keeps up with, so that a call waits for the receiver, not for a backlog.
flood(Sink) ->
    cast_loop(Sink, 100, bump),
    receive after 1 -> ok end,
    flood(Sink).

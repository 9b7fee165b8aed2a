%% A gen_server for arbor-dist's tests to call from arbor: echoes, sleeps, crashes,
%% and records the casts and messages it gets.
-module(arbor_test).
-behaviour(gen_server).
-export([start/1, init/1, handle_call/3, handle_cast/2, handle_info/2, seen/1]).

start(Name) ->
    {ok, Pid} = gen_server:start({local, Name}, ?MODULE, [], []),
    unlink(Pid),
    Pid.

seen(Name) -> gen_server:call(Name, seen).

init([]) -> {ok, []}.

handle_call(seen, _From, Seen) -> {reply, lists:reverse(Seen), Seen};
handle_call({sleep, Ms}, _From, S) -> timer:sleep(Ms), {reply, {slept, Ms}, S};
handle_call({crash, Reason}, _From, _S) -> exit(Reason);
handle_call({call, Dest, Req}, _From, S) -> {reply, catch gen_server:call(Dest, Req, 2000), S};
handle_call(Req, _From, S) -> {reply, {echo, Req}, S}.

handle_cast(Msg, S) -> {noreply, [{cast, Msg} | S]}.

handle_info(Msg, S) -> {noreply, [{info, Msg} | S]}.

//! Chat rooms started on demand under a DynamicSupervisor and named in a Registry: the
//! service a newcomer writes first. A room is a server holding its messages; `Chat::room`
//! starts it if it is not running (a second start of the same name returns the running
//! room); posts and reads go through the room's name, so they keep working after a crash,
//! when the supervisor has started a fresh room under the same name.
//!
//! `cargo run --example chat_rooms` opens two rooms, posts to them, crashes one (a post of
//! "/crash" is a bug that panics the room), and shows its name working again, with an empty
//! history: a restarted server starts from `init`. `docs/guide.md` ("The chat service in
//! both languages") has the Elixir version and the line counts of both.

use arbor::prelude::*;
use arbor::supervisor::{render_tree, ChildRef, ChildSpec, DynamicOpts, DynamicSupervisor, StartChildError};
use arbor::supervisor::{Strategy, Supervisor, SupervisorOpts};
use std::time::{Duration, Instant};

// --- the chat service ---

/// One chat room: its name and its messages.
struct Room {
    name: String,
    messages: Vec<String>,
}

impl GenServer for Room {
    type Args = String;
    type Info = (String, String); // a post: (who, text)
    type Call = (); // a request for the history
    type Reply = Vec<String>;

    fn init(name: String, _ctx: &mut Context<'_, Self>) -> Result<Self, ExitReason> {
        Ok(Room { name, messages: vec![] })
    }

    fn handle_info(&mut self, (who, text): (String, String), _ctx: &mut Context<'_, Self>) -> Flow {
        if text == "/crash" {
            panic!("room {} crashed on request", self.name);
        }
        self.messages.push(format!("{who}: {text}"));
        Flow::Continue
    }

    fn handle_call(&mut self, _: (), _: ReplyTo<Vec<String>>, _ctx: &mut Context<'_, Self>) -> CallFlow<Vec<String>> {
        CallFlow::Reply(self.messages.clone())
    }
}

/// The service: a Registry of room names and a DynamicSupervisor of rooms, under one root.
struct Chat {
    app: Supervisor,
    names: Registry<String>,
    rooms: ChildRef<DynamicSupervisor>, // follows the rooms' supervisor across its restarts
}

impl Chat {
    fn start() -> Result<Chat, arbor::Error> {
        let names = Registry::new(RegistryOpts::named("Chat.Rooms"));
        let rooms = DynamicOpts::new().local_name("Chat.RoomSupervisor");
        let children = vec![
            ChildSpec::new("Chat.Rooms", names.child_start()),
            DynamicSupervisor::child_spec("Chat.RoomSupervisor", rooms),
        ];
        let app = Supervisor::start_link(children, SupervisorOpts::new(Strategy::RestForOne))?;
        Ok(Chat {
            app,
            names,
            rooms: ChildRef::local("Chat.RoomSupervisor"),
        })
    }

    /// The room `name`, started if it is not running.
    fn room(&self, name: &str) -> Result<Pid, arbor::Error> {
        let spec = ChildSpec::named::<Room>(self.names.via(name.to_string()), name.to_string());
        Ok(self
            .rooms
            .get()?
            .start_child(spec)
            .or_else(StartChildError::already_started)?)
    }

    fn post(&self, room: &str, who: &str, text: &str) -> Result<(), arbor::Error> {
        Ok(self.names.send::<Room, _>(room, (who.to_string(), text.to_string()))?)
    }

    fn history(&self, room: &str) -> Result<Vec<String>, arbor::Error> {
        Ok(self.names.call::<Room, _>(room, ())?)
    }
}

// --- a session with the service ---

fn main() -> Result<(), arbor::Error> {
    let rt = Runtime::new()?; // this thread's current runtime: what the service starts on
    let chat = Chat::start()?;

    let rust = chat.room("rust")?;
    chat.room("elixir")?;
    println!(
        "room \"rust\" is {rust}; asking for it again gives {}",
        chat.room("rust")?
    );
    chat.post("rust", "ann", "hello")?;
    chat.post("rust", "bob", "hi ann")?;
    chat.post("elixir", "cy", "anyone here?")?;
    println!("rust: {:?}", chat.history("rust")?);
    println!("elixir: {:?}", chat.history("elixir")?);
    print!("{}", render_tree(chat.app.pid()));

    // A bug: this post panics the room. The caller of `history` would get the panic as
    // `CallError::Exited(Panic(..))`; the DynamicSupervisor starts a fresh room, which takes
    // the name again as it starts.
    println!("posting \"/crash\" to rust");
    chat.post("rust", "eve", "/crash")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while chat.names.whereis("rust").map_or(true, |pid| pid == rust) {
        assert!(Instant::now() < deadline, "the room was not restarted within 5 s");
        std::thread::yield_now();
    }
    let restarted = chat.room("rust")?;
    println!("room \"rust\" is now {restarted} (was {rust}); its name works again:");
    chat.post("rust", "ann", "still there?")?;
    println!("rust: {:?} (a restarted room starts empty)", chat.history("rust")?);
    println!("elixir: {:?} (untouched)", chat.history("elixir")?);
    print!("{}", render_tree(chat.app.pid()));

    rt.shutdown();
    println!("shut down cleanly");
    Ok(())
}

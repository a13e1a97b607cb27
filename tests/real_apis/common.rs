//! What the three fixture servers share: serving a router on `127.0.0.1:0`, stopping it,
//! a deterministic session-token generator (no randomness: the same run gives the same
//! tokens, so a failing scan can be replayed), and the [`Call`] extractor that hands a
//! handler its state and its caller, found in each fixture's own way ([`SignIn`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Router;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A fixture API serving on a loopback port until [`Server::stop`] (or until dropped).
pub struct Server {
    pub base_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Serves `app` on a port the OS picks.
pub async fn serve(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    let (tx, rx) = oneshot::channel::<()>();
    // `stop` sends, a dropped `Server` drops the sender: either ends the server.
    let stopped = async move { rx.await.unwrap_or_default() };
    let task = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .into_future(),
    );
    Server {
        base_url: format!("http://{addr}"),
        shutdown: Some(tx),
        task: Some(task),
    }
}

/// The password a fixture's `USERS` (user, password, env variable) gives `user`, if any.
pub fn password_of<'a>(users: &[(&str, &'a str, &str)], user: &str) -> Option<&'a str> {
    users.iter().find(|u| u.0 == user).map(|u| u.1)
}

/// A fixture server's state: its planted flaws, the session tokens it hands out, and its
/// data behind one lock.
pub struct Fixture<F, D> {
    pub flaws: F,
    pub tokens: Tokens,
    pub data: Mutex<D>,
}

impl<F, D> Fixture<F, D> {
    pub fn new(flaws: F, data: D) -> Arc<Self> {
        Arc::new(Fixture {
            flaws,
            tokens: Tokens::default(),
            data: Mutex::new(data),
        })
    }

    /// The data, locked. A handler that panicked while holding it poisons it: the fixture
    /// is broken then, and the test fails here.
    pub fn data(&self) -> MutexGuard<'_, D> {
        self.data.lock().expect("fixture data (a handler panicked)")
    }
}

/// How a fixture finds the caller in a request's headers: the caller, or the answer to
/// give instead (a 401 in the fixture's own house style).
pub trait SignIn {
    type Caller;
    fn caller(&self, headers: &HeaderMap) -> Result<Self::Caller, Box<Response>>;
}

/// A handler's shared state and its caller as [`SignIn`] finds it (or the refusal to
/// answer); [`signed_in!`] takes the caller or returns the refusal. Extracting never fails,
/// so a bad path or body is still answered before the sign-in is looked at, exactly as when
/// each handler read its `HeaderMap` itself.
pub struct Call<S: SignIn> {
    pub state: Arc<S>,
    pub who: Result<S::Caller, Box<Response>>,
}

impl<S> FromRequestParts<Arc<S>> for Call<S>
where
    S: SignIn + Send + Sync,
    S::Caller: Send,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<S>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Call {
            state: state.clone(),
            who: state.caller(&parts.headers),
        })
    }
}

/// The caller of a [`Call`]'s `who`, or returns the fixture's refusal from the handler.
macro_rules! signed_in {
    ($who:expr) => {
        match $who {
            Ok(who) => who,
            Err(denied) => return *denied,
        }
    };
}
pub(crate) use signed_in;

/// Opaque session tokens: a counter run through splitmix64, so they look random, never
/// repeat within a server, and are the same from run to run.
#[derive(Default)]
pub struct Tokens(AtomicU64);

impl Tokens {
    pub fn next(&self, prefix: &str) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut z = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        format!(
            "{prefix}{z:016x}{:08x}",
            n.wrapping_mul(2_654_435_761) as u32
        )
    }
}

/// The signed-in users of a fixture whose users are a list: which user each token names.
#[derive(Default)]
pub struct Sessions(std::collections::BTreeMap<String, usize>);

impl Sessions {
    /// A new token (`prefix` and [`Tokens::next`]) for the user at `index`.
    pub fn open(&mut self, tokens: &Tokens, prefix: &str, index: usize) -> String {
        let token = tokens.next(prefix);
        self.0.insert(token.clone(), index);
        token
    }

    /// The user `token` signs in, from `users`.
    pub fn user<U: Clone>(&self, token: &str, users: &[U]) -> Option<U> {
        self.0
            .get(token.trim())
            .and_then(|&i| users.get(i))
            .cloned()
    }
}

/// The index among `records` of the user `login` names (by `login_of`), when the
/// fixture's `users` list that login with `password`.
pub fn check_login<R>(
    users: &[(&str, &str, &str)],
    records: &[R],
    login_of: impl Fn(&R) -> &str,
    login: Option<&str>,
    password: Option<&str>,
) -> Option<usize> {
    let (login, password) = (login?, password?);
    users.iter().find(|u| u.0 == login && u.1 == password)?;
    records.iter().position(|r| login_of(r) == login)
}

/// A fixture's planted flaws, as [`planted_flaws!`] declares them: the servings the tests
/// compare (every flaw, the secure twin, one flaw alone) and the finding each flaw must give.
pub trait PlantedFlaws: Sized {
    /// (flaw, operation, attack): each flaw's name (its field) and the (operation, attack)
    /// a scan must report it as.
    const PLANTED: &'static [(&'static str, &'static str, &'static str)];

    /// Every flaw on.
    fn all() -> Self;

    /// Every flaw off: the secure twin.
    fn none() -> Self;

    /// Only the flaw named (a field name), every other one off.
    fn only(name: &str) -> Self;

    /// Every flaw when `flawed`, else the secure twin.
    fn all_or_none(flawed: bool) -> Self {
        if flawed {
            Self::all()
        } else {
            Self::none()
        }
    }
}

/// Declares a fixture's `Flaws`: one `bool` a planted flaw (off is its secure twin), each
/// with the (operation, attack) finding a scan must report it as, and their
/// [`PlantedFlaws`]. One macro, so a flaw added to a fixture is at once reachable by its
/// name from the per-flaw tests (a hand-written `only` could forget it) and expected from
/// every scan (a separate list of expected findings could miss it).
macro_rules! planted_flaws {
    ($($(#[doc = $doc:literal])* $name:ident => ($operation:literal, $attack:literal),)+) => {
        /// The planted flaws; each off is its secure twin.
        #[derive(Debug, Clone, Copy, Default)]
        pub struct Flaws {
            $($(#[doc = $doc])* pub $name: bool,)+
        }

        impl $crate::common::PlantedFlaws for Flaws {
            const PLANTED: &'static [(&'static str, &'static str, &'static str)] =
                &[$((stringify!($name), $operation, $attack),)+];

            fn all() -> Self {
                Flaws { $($name: true,)+ }
            }

            fn none() -> Self {
                Flaws::default()
            }

            fn only(name: &str) -> Self {
                let mut flaws = Flaws::default();
                match name {
                    $(stringify!($name) => flaws.$name = true,)+
                    other => panic!("no flaw `{other}` in this fixture"),
                }
                flaws
            }
        }
    };
}
pub(crate) use planted_flaws;

//! An SMTP server on loopback (mailin-embedded, in the test process) and
//! the plainest handler for it, an [`Inbox`] that keeps every email it
//! accepts. Tests that script refusals or TLS bring their own handler and
//! start it with [`serve`].

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use mailin_embedded::{response, Handler, Response, Server};

/// Starts `handler` on a free loopback port; each session works on a
/// clone of it. The server runs until the test process exits (mailin has
/// no shutdown).
pub fn serve<H: Handler + Clone + Send + 'static>(handler: &H, name: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(handler.clone());
    server
        .with_name(name)
        .with_num_threads(2)
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    addr
}

/// One email as the server accepted it.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// The envelope's recipients.
    pub to: Vec<String>,
    /// The message, headers and body, as sent.
    pub data: Vec<u8>,
}

impl Mail {
    /// The message as text (any invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Accepts every email and keeps it, in the order received.
#[derive(Clone, Default)]
pub struct Inbox {
    mails: Arc<Mutex<Vec<Mail>>>,
    current: Mail,
}

impl Inbox {
    /// Starts a server on a free loopback port that delivers into this
    /// inbox; its address.
    pub fn start(&self) -> SocketAddr {
        serve(self, "mx.test")
    }

    /// Every email received so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// How many emails went to `address` (compared in lower case).
    pub fn count_to(&self, address: &str) -> usize {
        let address = address.to_lowercase();
        self.mails
            .lock()
            .unwrap()
            .iter()
            .flat_map(|m| &m.to)
            .filter(|t| t.to_lowercase() == address)
            .count()
    }
}

impl Handler for Inbox {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Mail {
            to: to.to_vec(),
            data: Vec::new(),
        };
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = std::mem::take(&mut self.current);
        self.mails.lock().unwrap().push(mail);
        response::OK
    }
}

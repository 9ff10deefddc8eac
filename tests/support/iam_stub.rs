//! An IAM stand-in on 127.0.0.1 for what moto cannot do: `iam:SimulatePrincipalPolicy` (moto
//! answers 500, not implemented) and an IAM that denies ecsdoctor's own reads. It answers Query
//! requests by their `Action=` with canned XML and records the actions asked; ecsdoctor reaches it
//! through `AWS_ENDPOINT_URL_IAM`, over the same signed-request HTTP stack as real IAM.
#![allow(dead_code)]

use std::io::BufReader;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::lambda::{read_request, respond};

/// A canned answer: the action, the HTTP status and the XML body.
pub type Canned = (&'static str, u16, String);

/// The running stand-in.
pub struct IamStub {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    asked: Arc<Mutex<Vec<String>>>,
}

/// IAM's error document for `code` (Query protocol).
pub fn error_xml(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    )
}

/// A successful Query answer of `action` with `result` inside its `...Result` element.
pub fn ok_xml(action: &str, result: &str) -> String {
    format!(
        "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result>{result}</{action}Result><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata></{action}Response>"
    )
}

/// How the stand-in answers one request: by its action and its whole form body; `None` never
/// answers (a hung endpoint).
pub type Handler = dyn Fn(&str, &str) -> Option<(u16, String)> + Send + Sync;

impl IamStub {
    /// Starts the stand-in; an action without a canned answer gets 400 `InvalidAction`.
    pub fn start(canned: Vec<Canned>) -> IamStub {
        IamStub::start_with(Box::new(move |action, _| {
            Some(
                canned
                    .iter()
                    .find(|(a, _, _)| *a == action)
                    .map(|(_, s, b)| (*s, b.clone()))
                    .unwrap_or_else(|| (400, error_xml("InvalidAction", "not canned"))),
            )
        }))
    }

    /// Starts the stand-in with a handler of its own.
    pub fn start_with(handler: Box<Handler>) -> IamStub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the IAM stand-in");
        let port = listener.local_addr().expect("local_addr").port();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = asked.clone();
        let handler: Arc<Handler> = Arc::from(handler);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || {
                    let Ok(mut w) = conn.try_clone() else { return };
                    let mut r = BufReader::new(conn);
                    while let Some(req) = read_request(&mut r) {
                        let action = req
                            .body
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("Action="))
                            .unwrap_or_default()
                            .to_string();
                        log.lock().expect("asked").push(action.clone());
                        let Some((status, body)) = handler(&action, &req.body) else {
                            // Hung: hold the connection without answering.
                            std::thread::sleep(std::time::Duration::from_secs(120));
                            return;
                        };
                        let headers = [("Content-Type", "text/xml".to_string())];
                        if respond(&mut w, status, &headers, &body).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        IamStub {
            endpoint: format!("http://127.0.0.1:{port}"),
            asked,
        }
    }

    /// The actions asked so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("asked").clone()
    }
}

//! A rotated SMTP password reaches a running mailer: against a real SMTP server (aiosmtpd) that requires a login and whose password is changed under it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alarm_notify::email::{Mail, Mailer, SmtpConfig, SmtpTls};
use secrecy::SecretString;

/// aiosmtpd requiring `AUTH` as `alarm` with the password held in the
/// file `argv[2]` (read at each login, so the test rotates it), listening
/// on `argv[1]`; prints `listening` once bound (and nothing after: the
/// test stops reading).
const SERVER: &str = r#"
import sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, password_file = int(sys.argv[1]), sys.argv[2]

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alarm" \
        and auth_data.password.decode() == open(password_file).read().strip()
    # handled=False: aiosmtpd itself answers 535 to a refused login.
    return AuthResult(success=ok, handled=False)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

controller = Controller(Handler(), hostname="127.0.0.1", port=port,
    authenticator=authenticate, auth_required=True, auth_require_tls=False,
    auth_exclude_mechanism=["LOGIN"])
controller.start()
print("listening", flush=True)
while True:
    time.sleep(3600)
"#;

struct Server {
    child: Child,
    port: u16,
    password_file: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.password_file);
    }
}

fn start(password: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let password_file = std::env::temp_dir().join(format!("smtp-password-{port}"));
    std::fs::write(&password_file, password).expect("password file");
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(SERVER)
        .arg(port.to_string())
        .arg(&password_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with aiosmtpd (installed by cargo xtask ci)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(
        line.trim(),
        "listening",
        "aiosmtpd did not start (is it installed?)"
    );
    Server {
        child,
        port,
        password_file,
    }
}

fn mailer(port: u16, password: &str) -> Mailer {
    Mailer::new(&SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls: SmtpTls::None,
        username: Some("alarm".to_owned()),
        password: Some(SecretString::from(password.to_owned())),
        from: "Smart Alarm <alarms@smart-alarm.test>".to_owned(),
        timeout: Duration::from_secs(10),
    })
    .expect("mailer")
}

fn mail() -> Mail {
    Mail {
        subject: "Wake up".to_owned(),
        plain: "It is time.".to_owned(),
        html: "<p>It is time.</p>".to_owned(),
    }
}

#[tokio::test]
async fn a_rotated_password_is_used_for_the_next_login() {
    let server = start("first-password");
    let first = mailer(server.port, "first-password");
    first
        .send("ana@example.com", &mail())
        .await
        .expect("sent with the first password");

    // The server's password changes. A fresh mailer holding the old one is
    // refused (its pool has no connection already logged in).
    std::fs::write(&server.password_file, "second-password").expect("rotate");
    let stale = mailer(server.port, "first-password");
    let refused = stale.send("ana@example.com", &mail()).await.unwrap_err();
    assert!(
        refused.error.contains("535") || refused.error.to_lowercase().contains("auth"),
        "{}",
        refused.error
    );
    // That same mailer, given the new password, logs in with it: without
    // the new password it would be refused again.
    stale
        .set_password(&SecretString::from("second-password"))
        .expect("rebuilt");
    stale
        .send("ana@example.com", &mail())
        .await
        .expect("sent with the rotated password");
}

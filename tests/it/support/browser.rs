//! A real browser for the tests of pages people use: Debian's chromium,
//! headless at a phone's size with a phone's user agent, driven over
//! WebDriver (fantoccini) through a chromedriver the test starts on a free
//! loopback port, with a profile of its own in a fresh folder.
//!
//! `.ci/run` installs `chromium` and `chromium-driver` and sets
//! `NUDGE_REQUIRE_BROWSER`; without it, a machine with no
//! `/usr/bin/chromium` skips the browser tests with a printed `SKIPPED`.

use std::io::Write as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use super::site::{free_port, wait_for, PATIENCE};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A phone's viewport in CSS pixels (an iPhone 14's).
pub const PHONE: (u32, u32) = (390, 844);

/// An iPhone's Safari, as a phone sends it.
pub const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
     AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// A chromedriver and one browser session through it; both end when this
/// is dropped, even when the test fails.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A phone-sized headless chromium, or `None` (after printing
    /// `SKIPPED`) when there is no chromium and the browser is not
    /// required.
    pub async fn phone(test: &str) -> Option<Browser> {
        let required = std::env::var_os("NUDGE_REQUIRE_BROWSER").is_some();
        if !Path::new(CHROMIUM).exists() && !required {
            // Straight to stderr: the test harness captures `println!`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no {CHROMIUM} (install chromium and chromium-driver, as .ci/run does)"
            );
            return None;
        }
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: chromium runs in it too, and the whole
            // group ends with the test.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let mut driver = DriverGuard(Some(driver));
        wait_for(|| TcpStream::connect(("127.0.0.1", port)).ok())
            .unwrap_or_else(|| panic!("chromedriver never listened on {port}"));

        let profile = tempfile::tempdir().unwrap();
        let (width, height) = PHONE;
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
            format!("--user-agent={PHONE_UA}"),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert(
            "goog:chromeOptions".into(),
            // Headless chromium keeps windows at least 500 pixels wide: the
            // phone's viewport comes from its device metrics.
            serde_json::json!({
                "binary": CHROMIUM,
                "args": args,
                "mobileEmulation": {
                    "deviceMetrics": {
                        "width": width,
                        "height": height,
                        "pixelRatio": 3.0,
                        "mobile": true,
                        "touch": true,
                    },
                    "userAgent": PHONE_UA,
                },
            }),
        );
        // The console's messages, for tests that check a page logs no
        // error ([`Browser::console`]).
        capabilities.insert(
            "goog:loggingPrefs".into(),
            serde_json::json!({ "browser": "ALL" }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no browser session: {e}\nchromedriver's log:\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                )
            });
        Some(Browser {
            client,
            driver: driver.0.take().unwrap(),
            _profile: profile,
        })
    }

    /// Ends the session (chromium quits), then the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Types `text` into the field with id `id`.
    pub async fn type_into(&self, id: &str, text: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no field {id}: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Clicks the page's submit button.
    pub async fn submit(&self) {
        self.client
            .find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// The element `locator` finds, once it is on the page (waiting at
    /// most [`PATIENCE`]).
    pub async fn appears(&self, locator: Locator<'_>) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(locator)
            .await
            .unwrap()
    }

    /// The text of the element `locator` finds.
    pub async fn text(&self, locator: Locator<'_>) -> String {
        self.client
            .find(locator)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Asserts that nothing on the page is wider than the phone (no
    /// sideways scrolling).
    pub async fn fits_the_width(&self) {
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            overflow,
            serde_json::Value::Bool(false),
            "nothing wider than the phone"
        );
    }

    /// A screenshot of the page, checked to be a PNG and written to
    /// `path`; its bytes.
    pub async fn screenshot_to(&self, path: &Path) -> Vec<u8> {
        let shot = self.client.screenshot().await.unwrap();
        assert!(shot.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        std::fs::write(path, &shot).unwrap();
        shot
    }

    /// The browser console's messages since the last call, each as
    /// chromedriver gives it (`level`, `message`, `source`, `timestamp`).
    pub async fn console(&self) -> Vec<serde_json::Value> {
        let answer = self
            .client
            .issue_cmd(ConsoleLog)
            .await
            .unwrap_or_else(|e| panic!("the browser's console log: {e}"));
        answer.as_array().cloned().unwrap_or_default()
    }
}

/// chromedriver's `POST /session/{id}/se/log` for the `browser` log.
#[derive(Debug)]
struct ConsoleLog;

impl fantoccini::wd::WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_string()),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        end_group(&mut self.driver);
    }
}

/// Ends the driver if the session could not be made.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            end_group(child);
        }
    }
}

/// Ends the process group the driver leads (the driver and the browser
/// it started), then reaps the driver.
fn end_group(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let group = child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group
        // this test created; it touches no memory.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = child.wait();
    }
}

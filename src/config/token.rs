//! The admin API token: from the environment when configured, else
//! generated once into the store folder, readable by the owner only.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Config, ADMIN_TOKEN_FILE};

/// The fewest characters an admin token may have: 32 random characters
/// from even a small alphabet are beyond guessing through the API, while a
/// short one (a word, a PIN) is not. The generated token has 64.
pub const MIN_TOKEN_CHARS: usize = 32;

impl Config {
    /// The admin API token: the value of the environment variable named by
    /// `admin.token_env` when that is set and not empty, else the token in
    /// `<store>/admin-token`. Either must be at least [`MIN_TOKEN_CHARS`]
    /// visible ASCII characters (it travels in an HTTP header); one that is
    /// not is an `InvalidData` error saying where it came from and why.
    ///
    /// When the file does not exist, the store folder and the file are
    /// created with 32 random bytes, hex-encoded, readable by the owner
    /// only (mode 0600). The file appears whole or not at all (written
    /// aside, then linked into place), and when two processes race, both
    /// return the token of the one that won.
    pub fn admin_token(&self) -> io::Result<String> {
        if let Some(token) = self.admin_token_from_env()? {
            return Ok(token);
        }
        let path = self.store.join(ADMIN_TOKEN_FILE);
        match read_token(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            read => return read,
        }
        fs::create_dir_all(&self.store)?;
        let token = generate_token()?;
        write_new(&path, &token)?;
        read_token(&path)
    }
}

impl Config {
    /// The admin token from the environment variable named by
    /// `admin.token_env`, when that is set and not empty (checked as
    /// [`Config::admin_token`] checks it); `None` otherwise. Touches no
    /// file, so `nudge run` can refuse a bad token before it makes
    /// anything.
    pub fn admin_token_from_env(&self) -> io::Result<Option<String>> {
        let Some(name) = &self.admin.token_env else {
            return Ok(None);
        };
        let Some(token) = std::env::var_os(name).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let from = format!("environment variable `{name}` (named by `admin.token_env`)");
        let token = token.into_string().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the admin token in {from} is not valid UTF-8"),
            )
        })?;
        strong(token, &from).map(Some)
    }
}

fn read_token(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)?.read_to_string(&mut text)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("admin token file `{}` is empty", path.display()),
        ));
    }
    strong(token.to_string(), &format!("file `{}`", path.display()))
}

/// `token` when it is long enough and fit for a header; else why not,
/// naming where it came from (`from`) but never quoting it.
fn strong(token: String, from: &str) -> io::Result<String> {
    let refuse = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the admin token in {from} {why}; give one of at least {MIN_TOKEN_CHARS} \
                 random visible characters, such as the output of `openssl rand -hex 32`, \
                 or leave `admin.token_env` out to use a generated one"
            ),
        )
    };
    if let Some(bad) = token.chars().find(|c| !c.is_ascii_graphic()) {
        let what = if bad.is_ascii() {
            "a space or control character".to_string()
        } else {
            "a character that is not ASCII".to_string()
        };
        return Err(refuse(format!("has {what}")));
    }
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(refuse(format!(
            "has {chars} characters, too few to be safe"
        )));
    }
    Ok(token)
}

/// 32 random bytes from the operating system, as 64 lowercase hex digits.
fn generate_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no random bytes: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Creates `path` holding `token` (mode 0600) unless it exists: writes a
/// temporary file beside it, then hard-links it into place, which fails
/// rather than replace a file another process created meanwhile.
fn write_new(path: &Path, token: &str) -> io::Result<()> {
    // A random name, so that racing threads never share a temporary file.
    let temp = path.with_extension(format!("tmp-{}", &generate_token()?[..16]));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    let written = (|| {
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        match fs::hard_link(&temp, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            linked => linked,
        }
    })();
    let removed = fs::remove_file(&temp);
    written.and(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_digits() {
        let token = generate_token().unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token, generate_token().unwrap());
        assert_eq!(strong(token.clone(), "here").unwrap(), token);
    }

    #[test]
    fn short_or_unprintable_tokens_are_refused() {
        let long = "x".repeat(MIN_TOKEN_CHARS);
        assert_eq!(strong(long.clone(), "here").unwrap(), long);
        for (token, why) in [
            ("x".repeat(MIN_TOKEN_CHARS - 1), "has 31 characters"),
            (format!("{long} y"), "a space or control character"),
            (format!("{long}é"), "not ASCII"),
        ] {
            let e = strong(token.clone(), "file `t`").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            let text = e.to_string();
            assert!(text.starts_with("the admin token in file `t` "), "{text}");
            assert!(text.contains(why), "{text}");
            assert!(!text.contains(&token), "the token is never quoted: {text}");
        }
    }
}

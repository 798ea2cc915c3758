//! The admin API token: from the environment when configured, else
//! generated once into the store folder, readable by the owner only.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Config, ADMIN_TOKEN_FILE};

impl Config {
    /// The admin API token: the value of the environment variable named by
    /// `admin.token_env` when that is set and not empty, else the token in
    /// `<store>/admin-token`.
    ///
    /// When the file does not exist, the store folder and the file are
    /// created with 32 random bytes, hex-encoded, readable by the owner
    /// only (mode 0600). The file appears whole or not at all (written
    /// aside, then linked into place), and when two processes race, both
    /// return the token of the one that won.
    pub fn admin_token(&self) -> io::Result<String> {
        if let Some(name) = &self.admin.token_env {
            if let Some(token) = std::env::var_os(name).filter(|v| !v.is_empty()) {
                return token.into_string().map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("environment variable `{name}` is not valid UTF-8"),
                    )
                });
            }
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
    Ok(token.to_string())
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
    }
}

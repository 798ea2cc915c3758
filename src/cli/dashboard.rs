//! `nudge dashboard-user NAME`: the line of `[dashboard.users]` that lets
//! NAME log in to the dashboard, from a password read on standard input.
//! Only the password's Argon2 hash is printed; the password is never
//! written anywhere.

use std::io::BufRead;

use super::{emit, CliError, Status};

/// Reads a password (the first line of standard input) and prints `NAME =
/// "HASH"` for `[dashboard.users]` in nudge.toml.
pub fn user(name: &str) -> Result<Status, CliError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(CliError::Input(format!(
            "the user name {name:?} is not a plain name: use letters, digits, `_` and `-`"
        )));
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| {
            CliError::Input(format!("cannot read the password from standard input: {e}"))
        })?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.chars().count() < 12 {
        return Err(CliError::Input(
            "the password (the first line of standard input) has fewer than 12 characters"
                .to_string(),
        ));
    }
    let hash = crate::config::hash_password(password).map_err(CliError::Input)?;
    emit(format_args!(
        "# Under [dashboard.users] in nudge.toml:\n{name} = \"{hash}\"\n"
    ))?;
    Ok(Status::Ok)
}

//! Which candidate field a CSV column holds: by common names ("Full
//! name", "E-mail", "Mobile", ...), or as `--map COLUMN=FIELD` says.

use std::collections::BTreeMap;

/// What a column of the file becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// A candidate field (`name`, `email`, custom ones too).
    Field(String),
    /// Given and family names, joined into `name`.
    FirstName,
    LastName,
    /// The person's id in the system the file came from.
    ExternalId,
    /// `--map COLUMN=-`: left out.
    Skip,
}

/// A header as compared: lower case, letters and digits only.
fn squash(header: &str) -> String {
    header
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The column a header names by its common names; else a custom field of
/// the header's own name (`Shift preference` → `shift_preference`).
pub fn guess(header: &str) -> Column {
    let field = |f: &str| Column::Field(f.to_string());
    match squash(header).as_str() {
        "name" | "fullname" | "candidatename" | "applicantname" | "candidate" | "applicant" => {
            field("name")
        }
        "firstname" | "first" | "givenname" | "forename" => Column::FirstName,
        "lastname" | "last" | "surname" | "familyname" => Column::LastName,
        "email" | "emailaddress" | "mail" | "candidateemail" => field("email"),
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "mobilenumber" | "cell"
        | "cellphone" | "cellnumber" | "telephone" | "tel" | "sms" => field("phone"),
        "source" | "channel" | "referralsource" => field("source"),
        "role" | "job" | "jobtitle" | "position" | "title" | "requisition" => field("role"),
        "timezone" | "tz" | "zone" => field("timezone"),
        "language" | "lang" => field("language"),
        "id" | "externalid" | "candidateid" | "applicantid" => Column::ExternalId,
        _ => {
            let mut name = String::new();
            for c in header.trim().chars() {
                if c.is_alphanumeric() {
                    name.extend(c.to_lowercase());
                } else if !name.ends_with('_') && !name.is_empty() {
                    name.push('_');
                }
            }
            let name = name.trim_end_matches('_').to_string();
            if name.is_empty() {
                Column::Skip
            } else {
                Column::Field(name)
            }
        }
    }
}

/// `--map COLUMN=FIELD` (FIELD `-` leaves the column out): the column
/// names as written in the header, compared without case.
pub fn parse_map(text: &str) -> Result<(String, Column), String> {
    let (column, field) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not COLUMN=FIELD"))?;
    let field = field.trim();
    let column = column.trim().to_string();
    if column.is_empty() || field.is_empty() {
        return Err(format!("`{text}` is not COLUMN=FIELD"));
    }
    let target = match field {
        "-" => Column::Skip,
        "external_id" | "id" => Column::ExternalId,
        "first_name" => Column::FirstName,
        "last_name" => Column::LastName,
        f => Column::Field(f.to_lowercase()),
    };
    Ok((column, target))
}

/// Each header's column: `--map` first, then the common names.
pub fn columns(headers: &[String], maps: &BTreeMap<String, Column>) -> Vec<Column> {
    headers
        .iter()
        .map(|h| {
            maps.iter()
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(h.trim()))
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| guess(h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_are_recognised() {
        assert_eq!(guess("E-mail"), Column::Field("email".into()));
        assert_eq!(guess("Full Name"), Column::Field("name".into()));
        assert_eq!(guess("Cell"), Column::Field("phone".into()));
        assert_eq!(guess("First name"), Column::FirstName);
        assert_eq!(
            guess("Shift preference"),
            Column::Field("shift_preference".into())
        );
        assert_eq!(
            parse_map("Cell #=phone"),
            Ok(("Cell #".into(), Column::Field("phone".into())))
        );
    }
}

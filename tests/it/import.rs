//! `nudge import` and `nudge invite` through the real binary: CSV files
//! with good and bad rows, ZIP archives of CSVs and PDFs, PDF résumés
//! written here, with the daemon running and without it.

use std::io::Write;

use serde_json::Value;

use super::support::site::Site;
use super::support::{stderr, stdout};

/// A one-page PDF with each of `lines` on its own line, in Helvetica:
/// written here byte by byte, so what the importer reads is known.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td 16 TL\n");
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!("({escaped}) Tj T*\n"));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// 10 good rows and 5 bad ones, each bad one of its own kind; the bad
/// ones' lines, with their reasons, in the second value.
fn people_csv() -> (String, Vec<(u64, &'static str)>) {
    let rows = [
        "Ana Ruiz,ana.ruiz@example.com,+13125550101,Warehouse Associate,flyer",
        "Ben Ode,ben.ode@example.com,+13125550102,Warehouse Associate,flyer",
        "Cy Lam,,,Warehouse Associate,flyer", // line 4: no contact
        "Dee Park,dee.park@example.com,,Warehouse Associate,radio",
        "Eli Moss,eli@@example.com,,Warehouse Associate,radio", // line 6: invalid email
        "Fay Chen,,+13125550106,Warehouse Associate,radio",
        "Gus Hale,gus.hale@example.com,555-12,Warehouse Associate,web", // line 8: unparseable phone
        "Hana Ito,hana.ito@example.com,+13125550108,Warehouse Associate,web",
        "Ida Voss,ida.voss@example.com,+13125550109,Warehouse Associate,web",
        "Ana R.,ANA.RUIZ@example.com,,Warehouse Associate,web", // line 11: duplicate email
        "Jon Bell,jon.bell@example.com,+13125550110,Warehouse Associate,web",
        "Kim Roe,kim.roe@example.com,+13125550111,Warehouse Associate,web",
        "Fay C.,fay.c@example.com,+1 312 555 0106,Warehouse Associate,web", // line 14: duplicate phone
        "Lou Sand,lou.sand@example.com,,Warehouse Associate,web",
        "Max Webb,,+13125550112,Warehouse Associate,web",
    ];
    let mut csv = String::from("Full Name,E-mail,Mobile,Job title,Source\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    let bad = vec![
        (4, "no contact"),
        (6, "invalid email"),
        (8, "unparseable phone"),
        (11, "duplicate"),
        (14, "duplicate"),
    ];
    (csv, bad)
}

fn show(site: &Site, who: &str) -> Option<Value> {
    let out = site.nudge(&["show", who, "--json"]);
    (out.status.code() == Some(0)).then(|| serde_json::from_slice(&out.stdout).unwrap())
}

fn campaigns_of(view: &Value) -> Vec<String> {
    view["enrollments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["campaign"].as_str().unwrap().to_string())
        .collect()
}

fn import(site: &Site, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let out = site.nudge(&all);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

#[test]
fn ten_good_rows_are_imported_and_five_bad_ones_rejected_by_line() {
    let site = Site::warehouse();
    let (csv, bad) = people_csv();
    site.write("people.csv", &csv);

    let (code, out, err) = import(&site, &["people.csv"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("imported 10, updated 0, enrolled 10, rejected 5, flagged 0"),
        "{out}\n{err}"
    );
    assert!(out.contains("store opened directly"), "{out}");

    let rejects = std::fs::read_to_string(site.path().join("people.rejects.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(rejects.as_bytes());
    let got: Vec<(String, u64, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].parse().unwrap(), r[2].to_string())
        })
        .collect();
    let want: Vec<(String, u64, String)> = bad
        .iter()
        .map(|(line, reason)| ("people.csv".to_string(), *line, reason.to_string()))
        .collect();
    assert_eq!(got, want, "{rejects}");
    assert!(rejects.contains("duplicate of line 2"), "{rejects}");
    assert!(rejects.contains("duplicate of line 7"), "{rejects}");

    let ana = show(&site, "ana.ruiz@example.com").expect("Ana imported");
    assert_eq!(ana["fields"]["name"], "Ana Ruiz");
    assert_eq!(ana["fields"]["role"], "Warehouse Associate");
    assert_eq!(ana["fields"]["source"], "flyer");
    assert_eq!(campaigns_of(&ana), ["warehouse_associate"]);
    assert!(show(&site, "eli@@example.com").is_none());
    assert!(show(&site, "gus.hale@example.com").is_none());

    // The same file again adds nobody and enrolls nobody.
    let (code, out, err) = import(&site, &["people.csv", "--rejects", "again.csv"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(
            "imported 0, updated 0, enrolled 0, rejected 5, flagged 0, already imported 10"
        ),
        "{out}\n{err}"
    );
    assert!(site.path().join("again.csv").exists());
    let status = site.nudge(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let warehouse = status["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "warehouse_associate")
        .unwrap();
    let people: i64 = warehouse["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[1].as_i64().unwrap())
        .sum();
    assert_eq!(people, 10, "{warehouse}");
}

/// Rows spread over several commits (and, opened directly, written behind
/// the next chunk) are each recognised when the file comes again: the
/// first answers of the candidates a commit created are kept by the
/// commit, and found again after the store is opened anew, through the
/// daemon too.
#[test]
fn a_file_of_several_chunks_imported_again_adds_nobody_directly_or_through_the_daemon() {
    let site = Site::warehouse();
    let rows = 2_600;
    let mut csv = String::from("Full name,Email,Mobile,Job title\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "Applicant {i},applicant{i}@example.com,+1555{i:07},Warehouse Associate\n"
        ));
    }
    site.write("many.csv", &csv);
    let (code, out, err) = import(&site, &["many.csv", "--review"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "imported {rows}, updated 0, enrolled 0, rejected 0, flagged 0"
        )),
        "{out}\n{err}"
    );
    // The first and the last of the file, and one from the middle chunk.
    for i in [0, 1_337, rows - 1] {
        let who = format!("applicant{i}@example.com");
        let view = show(&site, &who).unwrap_or_else(|| panic!("{who} imported"));
        assert_eq!(view["fields"]["name"], format!("Applicant {i}"));
    }
    let again = format!(
        "imported 0, updated 0, enrolled 0, rejected 0, flagged 0, already imported {rows}"
    );
    let (code, out, err) = import(&site, &["many.csv", "--review"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&again), "{out}\n{err}");

    let daemon = site.start(None);
    let (code, out, err) = import(&site, &["many.csv", "--review"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("through the running daemon"), "{out}");
    assert!(out.contains(&again), "{out}\n{err}");
    daemon.stop();
}

#[test]
fn a_pdf_resume_gives_its_name_email_and_phone_and_the_guess_is_flagged() {
    let site = Site::warehouse();
    let resume = pdf(&[
        "Maria Lopez",
        "Warehouse Associate",
        "maria.lopez@example.com | +1 (312) 555-0147",
        "Experience",
        "Picker and packer, Dallas DC, 2021 - 2024",
    ]);
    std::fs::write(site.path().join("maria.pdf"), resume).unwrap();
    let (code, out, err) = import(&site, &["maria.pdf"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("imported 1,"), "{out}\n{err}");
    assert!(out.contains("flagged 1"), "{out}\n{err}");
    assert!(
        err.contains("name guessed from the line `Maria Lopez`"),
        "{err}"
    );
    let maria = show(&site, "maria.lopez@example.com").expect("Maria imported");
    assert_eq!(maria["fields"]["name"], "Maria Lopez");
    assert_eq!(maria["fields"]["phone"], "+13125550147");
}

#[test]
fn a_zip_of_a_csv_and_pdfs_is_imported_whole() {
    let site = Site::warehouse();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("batch/people.csv", stored).unwrap();
    zip.write_all(
        b"name,email,phone,role\n\
          Nia Shaw,nia.shaw@example.com,+14695550120,Warehouse Associate\n\
          Omar Reyes,,+14695550121,Warehouse Associate\n\
          No Contact,,,Warehouse Associate\n",
    )
    .unwrap();
    zip.start_file("resumes/pat.pdf", stored).unwrap();
    zip.write_all(&pdf(&[
        "Name: Pat Quinn",
        "pat.quinn@example.com",
        "214-555-0188",
    ]))
    .unwrap();
    zip.start_file("resumes/rae.pdf", stored).unwrap();
    zip.write_all(&pdf(&["Resume", "Rae Sun", "rae.sun@example.org"]))
        .unwrap();
    zip.start_file("notes.docx", stored).unwrap();
    zip.write_all(b"not an applicant").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    std::fs::write(site.path().join("batch.zip"), bytes).unwrap();

    let mut toml = std::fs::read_to_string(site.config()).unwrap();
    toml = toml.replacen("[admin]", "phone_country_code = \"1\"\n\n[admin]", 1);
    site.write("nudge.toml", &toml);

    let (code, out, err) = import(&site, &["batch.zip", "--rejects", "zip-rejects.csv"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("imported 4,"), "{out}\n{err}");
    assert!(out.contains("rejected 1,"), "{out}\n{err}");
    assert!(out.contains("flagged 1"), "{out}\n{err}");
    assert!(err.contains("skipped batch.zip/notes.docx"), "{err}");
    let rejects = std::fs::read_to_string(site.path().join("zip-rejects.csv")).unwrap();
    assert!(
        rejects.contains("batch.zip/batch/people.csv,4,no contact"),
        "{rejects}"
    );
    let pat = show(&site, "pat.quinn@example.com").expect("Pat from the PDF");
    assert_eq!(pat["fields"]["name"], "Pat Quinn");
    assert_eq!(pat["fields"]["phone"], "+12145550188");
    let rae = show(&site, "rae.sun@example.org").expect("Rae from the PDF");
    assert_eq!(rae["fields"]["name"], "Rae Sun");
    assert!(show(&site, "+14695550121").is_some());
}

#[test]
fn import_through_the_running_daemon_and_review_before_inviting() {
    let site = Site::warehouse();
    let (csv, _) = people_csv();
    site.write("people.csv", &csv);
    let daemon = site.start(None);

    let (code, out, err) = import(&site, &["people.csv", "--review"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("through the running daemon"), "{out}");
    assert!(
        out.contains("imported 10, updated 0, enrolled 0, rejected 5, flagged 0"),
        "{out}\n{err}"
    );
    assert!(out.contains("would invite"), "{out}");
    assert!(
        out.contains("Ana Ruiz <ana.ruiz@example.com, +13125550101>"),
        "{out}"
    );
    let ana = show(&site, "ana.ruiz@example.com").expect("Ana imported");
    assert_eq!(ana["fields"]["import_review"], "pending");
    assert!(campaigns_of(&ana).is_empty());

    let out = site.nudge(&["invite", "--all-reviewed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("enrolled 10"), "{}", stdout(&out));
    let ana = show(&site, "ana.ruiz@example.com").unwrap();
    assert_eq!(ana["fields"]["import_review"], "invited");
    assert_eq!(campaigns_of(&ana), ["warehouse_associate"]);

    // Nobody is left to invite, and the file again adds nobody.
    let out = site.nudge(&["invite", "--all-reviewed"]);
    assert!(
        stdout(&out).contains("nobody to invite"),
        "{}",
        stdout(&out)
    );
    let (code, out, err) = import(&site, &["people.csv"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("imported 0,"), "{out}\n{err}");
    daemon.stop();
}

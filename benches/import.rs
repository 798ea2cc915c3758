//! `cargo bench --bench import`: `nudge import --review` of 1,000,000
//! (`NUDGE_BENCH_ROWS`) generated CSV rows into a fresh store, no daemon running (the store
//! opened by the command itself), each row a new candidate.
//!
//! `--review` creates the candidates without enrolling them, so the
//! figure is the import's own cost (reading, checking, identity, one
//! durable commit per 1,000 rows), not the campaigns'. Prints rows per
//! second and the process's peak resident set; nothing asserts on time.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

#[path = "support/mod.rs"]
mod support;

/// As `nudge` itself runs (`src/main.rs`): glibc's allocator spent half
/// of an import's time in malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Written as it is made, so the file never sits in this process's memory
/// (the peak printed is the import's).
fn generate(path: &Path, rows: u64) {
    let mut csv = std::io::BufWriter::new(std::fs::File::create(path).expect("create the CSV"));
    let mut write = || -> std::io::Result<()> {
        writeln!(csv, "Full name,Email,Mobile,Job title,Source")?;
        for i in 0..rows {
            writeln!(
                csv,
                "Applicant {i},applicant{i}@example.com,+1555{:07},Warehouse Associate,{}",
                i,
                ["indeed", "flyer", "career_site"][i as usize % 3]
            )?;
        }
        csv.flush()
    };
    write().expect("write the CSV");
}

fn peak_rss_mb() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = support::env_or("NUDGE_BENCH_ROWS", 1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(dir.path().join("campaigns")).unwrap();
    std::fs::copy(
        root.join("campaigns/warehouse.nudge"),
        dir.path().join("campaigns/warehouse.nudge"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    for entry in std::fs::read_dir(root.join("templates")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("templates").join(entry.file_name()),
        )
        .unwrap();
    }
    let config_path = dir.path().join("nudge.toml");
    std::fs::write(
        &config_path,
        "store = \"data\"\ncampaigns = \"campaigns\"\ntemplates = \"templates\"\n\
         [admin]\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let csv = dir.path().join("applicants.csv");
    generate(&csv, rows);
    let config = nudge::cli::load_config(Some(&config_path)).expect("config");
    let options = nudge::cli::ImportOptions {
        files: vec![csv],
        review: true,
        ..Default::default()
    };
    // As `nudge` itself runs (`src/main.rs`): 4 KiB pages.
    let _ = nudge::runtime::memory::small_pages();
    let started = Instant::now();
    nudge::cli::import(&config, &options).expect("import");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "import --review of {rows} CSV rows, no daemon: {:.1} s, {:.0} rows/s, peak RSS {:.0} MB",
        secs,
        rows as f64 / secs,
        peak_rss_mb()
    );
}

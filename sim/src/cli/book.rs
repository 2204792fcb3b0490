//! `mmsim book`: regenerate the book's diagrams and generated pages, or check they are current.

use super::fail;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BookArgs {
    /// Directory of the generated pages.
    #[arg(long, default_value = "book/src/generated")]
    pub out: PathBuf,
    /// Write nothing: regenerate in memory and exit 1 naming every file that differs.
    #[arg(long)]
    pub check: bool,
}

pub fn book(a: &BookArgs) -> i32 {
    let pages = match crate::book::generate() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if a.check {
        let problems = crate::book::check(&a.out, &pages);
        if problems.is_empty() {
            println!("{}: {} generated files are current", a.out.display(), pages.len());
            return 0;
        }
        for p in &problems {
            eprintln!("mmsim book --check: {p}");
        }
        eprintln!(
            "mmsim book --check: {} of the book's generated files are stale; regenerate them with \
             `cargo run -p mmsim -- book --out {}` and commit the result",
            problems.len(),
            a.out.display()
        );
        return 1;
    }
    match crate::book::write(&a.out, &pages) {
        Ok(written) => {
            println!("{}: wrote {} files", a.out.display(), written.len());
            0
        }
        Err(e) => fail(e),
    }
}

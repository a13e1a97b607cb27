//! Times loading the largest corpus document (MANIFEST `size_bytes`) in release mode.
//! Run with `cargo bench --bench spec_load`; prints the mean per load on its last line.

use std::path::Path;
use std::time::Instant;

const RUNS: u32 = 5;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/openapi-corpus");
    let Ok(manifest) = std::fs::read_to_string(corpus.join("MANIFEST.tsv")) else {
        println!("skipping: ../shared/openapi-corpus not found");
        return;
    };
    let largest = manifest
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let size = cols.get(8)?.parse::<u64>().ok()?;
            Some((size, cols.first()?.to_string()))
        })
        .max();
    let Some((size, file)) = largest else {
        println!("skipping: MANIFEST.tsv lists no documents");
        return;
    };
    let path = corpus.join(&file);

    let mut total_ms = 0.0;
    for run in 0..=RUNS {
        let started = Instant::now();
        let api = match rolegrid::spec::load(&path) {
            Ok(api) => api,
            Err(e) => {
                eprintln!("rolegrid: {e}");
                std::process::exit(1);
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        // The first run warms the page cache and allocator; it is not counted.
        if run > 0 {
            total_ms += ms;
        }
        if run == RUNS {
            println!("{file}: {size} bytes, {} operations", api.operations.len());
        }
    }
    println!(
        "largest spec load: {:.0} ms (target < 500 ms)",
        total_ms / f64::from(RUNS)
    );
}

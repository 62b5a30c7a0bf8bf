//! Writes a cluster dump as kubectl prints it, for the import benchmarks and tests:
//!
//! ```text
//! dump --services 1000000 [--endpoints 4] [--format json|yaml|yaml-documents] > cluster.json
//! ```
//!
//! Prints `{"objects": N, "bytes": B, "bytes_per_object": B/N}` on stderr.

use std::io::{BufWriter, Write as _};

use kubenat_bench::dump::{DumpFormat, DumpShape, write_dump};

fn main() {
    let mut shape = DumpShape {
        services: 1000,
        endpoints: 4,
    };
    let mut format = DumpFormat::JsonList;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--services" => {
                shape.services = value.parse().unwrap_or_else(|_| usage("--services N"))
            }
            "--endpoints" => {
                shape.endpoints = value.parse().unwrap_or_else(|_| usage("--endpoints M"))
            }
            "--format" => format = value.parse().unwrap_or_else(|e: String| usage(&e)),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let mut out = CountingWriter {
        inner: BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
        bytes: 0,
    };
    let objects = write_dump(&mut out, shape, format)
        .and_then(|n| out.flush().map(|()| n))
        .unwrap_or_else(|e| {
            eprintln!("dump: {e}");
            std::process::exit(3);
        });
    eprintln!(
        "{{\"objects\": {objects}, \"bytes\": {}, \"bytes_per_object\": {:.0}}}",
        out.bytes,
        out.bytes as f64 / objects.max(1) as f64
    );
}

struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: std::io::Write> std::io::Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn usage(message: &str) -> ! {
    eprintln!(
        "dump: {message}\nusage: dump --services N [--endpoints M] [--format json|yaml|yaml-documents]"
    );
    std::process::exit(2);
}

//! `wit-bindgen c WIT... [--world WORLD] [--out-dir DIR]`: the C bindings of a WIT world,
//! written as `wit-bindgen-cli` 0.63's `c` command writes them (the same `wit-bindgen-c`
//! generator with its default options, the same world selection, the same file names and
//! the same "Generating ..." lines on stderr). Other commands and options are refused by
//! name, never ignored.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::Files;

const VERSION: &str = concat!(
    "wit-bindgen-cli ",
    env!("CARGO_PKG_VERSION"),
    " (the C generator alone)"
);

#[derive(Debug, Default, PartialEq)]
struct Args {
    wit: Vec<PathBuf>,
    world: Option<String>,
    out_dir: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Option<Args>> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("--version" | "-V") => return Ok(None),
        Some("c") => {}
        Some(other) => bail!(
            "this wit-bindgen has the C generator only (`wit-bindgen c ...`), not {other:?}: install wit-bindgen-cli for the others"
        ),
        None => bail!("usage: wit-bindgen c WIT... [--world WORLD] [--out-dir DIR]"),
    }
    let mut parsed = Args::default();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--world" | "-w" => parsed.world = Some(value("--world")?),
            "--out-dir" => parsed.out_dir = Some(PathBuf::from(value("--out-dir")?)),
            flag if flag.starts_with('-') => bail!(
                "option {flag} is not supported here (only --world and --out-dir, with the C generator's defaults)"
            ),
            path => parsed.wit.push(PathBuf::from(path)),
        }
    }
    if parsed.wit.is_empty() {
        bail!("usage: wit-bindgen c WIT... [--world WORLD] [--out-dir DIR]");
    }
    Ok(Some(parsed))
}

/// What `wit-bindgen-cli`'s `gen_world` does for the `c` command.
fn generate(args: &Args) -> Result<Files> {
    let mut resolve = Resolve::default();
    let mut packages = Vec::new();
    for wit in &args.wit {
        let (package, _files) = resolve.push_path(wit)?;
        packages.push(package);
    }
    let world = resolve.select_world(&packages, args.world.as_deref())?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)?;
    Ok(files)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(args) = parse(&args)? else {
        println!("{VERSION}");
        return Ok(());
    };
    for (name, contents) in generate(&args)?.iter() {
        let dst = match &args.out_dir {
            Some(dir) => dir.join(name),
            None => name.into(),
        };
        eprintln!("Generating {dst:?}");
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {parent:?}"))?;
        }
        std::fs::write(&dst, contents).with_context(|| format!("failed to write {dst:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_c_command_and_its_two_options() {
        let args = parse(&strings(&[
            "c",
            "wit/monitor.wit",
            "--world",
            "sink",
            "--out-dir",
            "build",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            args,
            Args {
                wit: vec!["wit/monitor.wit".into()],
                world: Some("sink".into()),
                out_dir: Some("build".into()),
            }
        );
        assert_eq!(parse(&strings(&["--version"])).unwrap(), None);
        let other = parse(&strings(&["rust", "wit"])).unwrap_err().to_string();
        assert!(other.contains("C generator only"), "{other}");
        let flag = parse(&strings(&["c", "wit", "--no-helpers"]))
            .unwrap_err()
            .to_string();
        assert!(flag.contains("--no-helpers is not supported"), "{flag}");
        assert!(parse(&strings(&["c"])).is_err());
        assert!(parse(&strings(&["c", "wit", "--world"])).is_err());
    }

    /// The files `wit-bindgen c` writes for a world of the repository's WIT package.
    #[test]
    fn generates_the_sink_worlds_files() {
        let wit = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../wit/monitor.wit");
        let files = generate(&Args {
            wit: vec![wit],
            world: Some("sink".into()),
            out_dir: None,
        })
        .unwrap();
        let mut names: Vec<&str> = files.iter().map(|(n, _)| n).collect();
        names.sort();
        assert_eq!(names, ["sink.c", "sink.h", "sink_component_type.o"]);
        let header = files
            .iter()
            .find(|(n, _)| *n == "sink.h")
            .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
            .unwrap();
        assert!(header.contains("exports_sink_init"), "{header}");
    }
}

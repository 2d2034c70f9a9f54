//! Unpacker tests with layers built here, hostile ones written with raw tar headers (the tar
//! crate's own path setters refuse `..` and absolute names, as they should).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

/// One tar entry to write.
enum Item<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    Device(&'a str),
}

/// A tar archive whose names are written raw into the header (no validation at all).
fn tar_of(items: &[Item<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        let (name, data): (&str, &[u8]) = match item {
            Item::File(name, data, mode) => {
                header.set_entry_type(EntryType::Regular);
                header.set_mode(*mode);
                (name, data)
            }
            Item::Dir(name) => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                (name, b"")
            }
            Item::Symlink(name, target) | Item::HardLink(name, target) => {
                let kind =
                    if matches!(item, Item::Symlink(..)) { EntryType::Symlink } else { EntryType::Link };
                header.set_entry_type(kind);
                header.set_mode(0o777);
                raw_field(&mut header.as_old_mut().linkname, target);
                (name, b"")
            }
            Item::Device(name) => {
                header.set_entry_type(EntryType::Char);
                header.set_mode(0o666);
                (name, b"")
            }
        };
        raw_field(&mut header.as_old_mut().name, name);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append(&header, data).expect("append");
    }
    builder.into_inner().expect("finish tar")
}

fn raw_field(field: &mut [u8], value: &str) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).expect("gzip");
    gz.finish().expect("gzip")
}

/// A work dir holding `outside/` (must stay empty) and `outside/inner/rootfs/`, so that both
/// `../` and `../../` from the rootfs land somewhere a test can look.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("outside/inner/rootfs")).expect("mkdir");
        Work { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("outside/inner/rootfs")
    }

    fn layer(&self, name: &str, bytes: &[u8]) -> LayerBlob {
        let path = self.dir.path().join(name);
        fs::write(&path, bytes).expect("write blob");
        LayerBlob { digest: format!("sha256:{name}"), path }
    }

    /// Everything under the work dir except the rootfs and the blobs.
    fn outside_rootfs(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![self.dir.path().join("outside")];
        while let Some(dir) = pending.pop() {
            for child in fs::read_dir(&dir).expect("read_dir") {
                let path = child.expect("entry").path();
                if path == self.root() {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path.clone());
                }
                found.push(path.strip_prefix(self.dir.path()).expect("inside").display().to_string());
            }
        }
        found.sort();
        found
    }
}

fn assert_refused(work: &Work, items: &[Item<'_>], entry: &str, why: &str) {
    let before = work.outside_rootfs();
    let layer = work.layer("evil", &gzip(&tar_of(items)));
    let error = unpack_layers(&work.root(), &[layer]).expect_err("hostile layer is refused");
    let text = error.to_string();
    assert!(
        text.contains("sha256:evil") && text.contains(entry) && text.contains(why),
        "error names the layer, the entry and why: {text}"
    );
    assert_eq!(work.outside_rootfs(), before, "nothing was written outside the rootfs");
}

#[test]
fn gzip_zstd_and_plain_layers_unpack_with_links() {
    let work = Work::new();
    let base = tar_of(&[
        Item::Dir("bin/"),
        Item::File("bin/busybox", b"ELF", 0o4755),
        Item::Symlink("bin/sh", "busybox"),
        Item::HardLink("bin/ls", "bin/busybox"),
    ]);
    let second = tar_of(&[Item::Dir("etc"), Item::File("etc/motd", b"hi\n", 0o644)]);
    let third = tar_of(&[Item::File("./etc/issue", b"Debian\n", 0o600)]);
    let zst = zstd::encode_all(second.as_slice(), 3).expect("zstd");
    let layers = [work.layer("a", &gzip(&base)), work.layer("b", &zst), work.layer("c", &third)];
    unpack_layers(&work.root(), &layers).expect("unpacks");
    let root = work.root();
    assert_eq!(fs::read(root.join("etc/motd")).expect("motd"), b"hi\n");
    assert_eq!(fs::read(root.join("etc/issue")).expect("issue"), b"Debian\n");
    assert_eq!(fs::read_link(root.join("bin/sh")).expect("link"), Path::new("busybox"));
    let busybox = fs::metadata(root.join("bin/busybox")).expect("busybox");
    assert_eq!(busybox.permissions().mode() & 0o7777, 0o4755, "setuid kept exactly as in the image");
    assert_eq!(busybox.ino(), fs::metadata(root.join("bin/ls")).expect("ls").ino(), "hard link");
    assert_eq!(fs::metadata(root.join("etc/issue")).expect("issue").permissions().mode() & 0o777, 0o600);
}

#[test]
fn whiteouts_hide_lower_layers_only() {
    let work = Work::new();
    let lower = tar_of(&[
        Item::File("a/x", b"x", 0o644),
        Item::File("a/y", b"y", 0o644),
        Item::File("b/old", b"old", 0o644),
        Item::File("b/sub/deep", b"deep", 0o644),
    ]);
    let upper = tar_of(&[
        Item::File("a/w", b"w", 0o644),
        Item::File("a/.wh.w", b"", 0o644),
        Item::File("a/.wh.x", b"", 0o644),
        Item::File("b/sub/new", b"new", 0o644),
        Item::File("b/.wh..wh..opq", b"", 0o644),
        Item::File("b/after", b"after", 0o644),
        Item::File(".wh..wh.plnk", b"", 0o644),
    ]);
    let layers = [work.layer("lower", &lower), work.layer("upper", &upper)];
    unpack_layers(&work.root(), &layers).expect("unpacks");
    let root = work.root();
    assert!(!root.join("a/x").exists(), ".wh.x removed the lower a/x");
    assert!(root.join("a/y").exists());
    assert!(root.join("a/w").exists(), "a whiteout never hides its own layer's file");
    assert!(!root.join("b/old").exists() && !root.join("b/sub/deep").exists(), "opaque dir");
    assert!(root.join("b/sub/new").exists() && root.join("b/after").exists());
    assert!(!root.join("a/.wh.x").exists() && !root.join(".wh..wh.plnk").exists());
}

#[test]
fn dot_dot_entry_is_refused() {
    let work = Work::new();
    assert_refused(
        &work,
        &[Item::File("../../etc/passwd", b"root::0:0::/:/bin/sh\n", 0o644)],
        "../../etc/passwd",
        "..",
    );
}

#[test]
fn absolute_entry_is_refused() {
    let work = Work::new();
    let outside = work.dir.path().join("outside/abs-target");
    let name = outside.display().to_string();
    assert_refused(&work, &[Item::File(&name, b"x", 0o644)], &name, "absolute path");
}

#[test]
fn writing_through_an_escaping_symlink_is_refused() {
    let work = Work::new();
    let items = [Item::Symlink("escape", "../.."), Item::File("escape/pwned", b"x", 0o644)];
    assert_refused(&work, &items, "escape/pwned", "out of the rootfs");
}

#[test]
fn absolute_symlinks_stay_inside_the_rootfs() {
    let work = Work::new();
    let outside = work.dir.path().join("outside");
    let items = [
        Item::Symlink("abs", &outside.display().to_string()),
        Item::File("abs/pwned", b"x", 0o644),
        // A symlink then a file of the same name: the link itself is replaced, not followed.
        Item::Symlink("passwd", "../../not-here"),
        Item::File("passwd", b"mine", 0o644),
    ];
    let layer = work.layer("abs", &tar_of(&items));
    unpack_layers(&work.root(), &[layer]).expect("contained, so accepted");
    let inside = work.root().join(outside.strip_prefix("/").expect("absolute")).join("pwned");
    assert!(inside.exists(), "the write landed at the link's target inside the rootfs");
    assert_eq!(fs::read(work.root().join("passwd")).expect("file"), b"mine");
    assert_eq!(work.outside_rootfs(), ["outside/inner"]);
}

#[test]
fn hard_links_out_of_the_rootfs_are_refused() {
    let work = Work::new();
    fs::write(work.dir.path().join("outside/secret"), b"s").expect("write");
    assert_refused(&work, &[Item::HardLink("stolen", "../../secret")], "stolen", "..");
    assert_refused(&work, &[Item::HardLink("stolen", "/etc/passwd")], "stolen", "absolute path");
    let items = [Item::Symlink("up", "../.."), Item::HardLink("stolen", "up/secret")];
    assert_refused(&work, &items, "stolen", "out of the rootfs");
    assert_refused(&work, &[Item::HardLink("stolen", "missing")], "stolen", "not in the rootfs");
    assert_eq!(fs::read(work.dir.path().join("outside/secret")).expect("secret"), b"s");
}

#[test]
fn device_nodes_are_refused() {
    let work = Work::new();
    assert_refused(&work, &[Item::Device("dev/sda")], "dev/sda", "device nodes");
}

#[test]
fn garbage_is_a_clear_error() {
    let work = Work::new();
    let layer = work.layer("junk", &gzip(b"this is not a tar archive at all, just text that goes on"));
    let error = unpack_layers(&work.root(), &[layer]).expect_err("refused");
    assert!(error.to_string().contains("sha256:junk"), "{error}");
}

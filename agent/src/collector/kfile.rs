//! Reading procfs and sysfs files for the price of one `pread`.
//!
//! Path lookup is the costly part of open/read/close on these filesystems, and their files
//! regenerate their content when read again from offset 0. So the descriptors stay open between
//! scrapes and are re-read with `pread`; any error drops the descriptor and the file is opened
//! afresh once (an interface that went away, PID 1 restarted in a container). Only for kernel
//! files: a regular file replaced by rename (a textfile, udev's database) would keep its old
//! content behind an old descriptor, so those are read with plain opens.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

/// More open files than this (interfaces come and go) and the cache starts over.
const MAX_OPEN: usize = 512;

static OPEN: LazyLock<Mutex<HashMap<PathBuf, File>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 16 * 1024]);
}

fn read_all_at(file: &File) -> io::Result<String> {
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        let mut len = 0;
        loop {
            if len == buf.len() {
                let grown = buf.len() * 2;
                if grown > 64 << 20 {
                    return Err(io::Error::other("file larger than 64 MiB"));
                }
                buf.resize(grown, 0);
            }
            let n = file.read_at(&mut buf[len..], len as u64)?;
            if n == 0 {
                break;
            }
            len += n;
        }
        String::from_utf8(buf[..len].to_vec())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    })
}

fn keep(path: &Path, file: File) {
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    if open.len() >= MAX_OPEN {
        open.clear();
    }
    open.insert(path.to_path_buf(), file);
}

/// The whole content of a procfs or sysfs file.
pub fn read(path: &Path) -> io::Result<String> {
    let cached = OPEN.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
    if let Some(file) = cached
        && let Ok(text) = read_all_at(&file)
    {
        keep(path, file);
        return Ok(text);
    }
    let file = File::open(path)?;
    let text = read_all_at(&file)?;
    keep(path, file);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads_fresh_content_and_recovers_from_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("attr");
        std::fs::write(&p, "1\n").unwrap();
        assert_eq!(read(&p).unwrap(), "1\n");
        // Rewritten in place (as the kernel regenerates a file): the kept descriptor sees it.
        std::fs::write(&p, "22\n").unwrap();
        assert_eq!(read(&p).unwrap(), "22\n");
        std::fs::remove_file(&p).unwrap();
        // A regular file lives on behind its descriptor; kernel files answer errors instead.
        // Either way a missing path opened afresh is NotFound.
        OPEN.lock().unwrap().remove(&p);
        assert_eq!(read(&p).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}

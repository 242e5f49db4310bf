//! The gRPC listener on a Unix socket (`[server] unix_socket`), beside the
//! TCP one: how a sidecar is reached on one host. The socket's mode says
//! who may connect; a caller still authenticates as on TCP.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A bound socket, removed from the file system when dropped.
#[derive(Debug)]
pub(crate) struct UnixSocket {
    path: PathBuf,
}

impl UnixSocket {
    /// Binds `path` with permission bits `mode`. A socket already there
    /// is one a killed gateway left (a live one answers a connect: then
    /// this fails, as a second gateway on one TCP port would); any other
    /// file is never removed.
    pub(crate) fn bind(
        path: &Path,
        mode: u32,
    ) -> std::io::Result<(UnixSocket, tokio::net::UnixListener)> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file that is not a socket is there; remove it or name another path",
                ));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another process serves this socket",
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = tokio::net::UnixListener::bind(path)?;
        let socket = UnixSocket {
            path: path.to_owned(),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok((socket, listener))
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

//! The FUSE file system: names and metadata go straight to the backing
//! directory; file contents changed since the last `fsync` stay in memory
//! ([`PendingFile`]) until an `fsync` writes them through, or a power loss
//! drops them.
//!
//! Inode numbers are the backing files' own, so that the pending state of a
//! file follows it through renames and is found again after the kernel
//! forgets and looks it up anew. The backing root takes FUSE's root number
//! 1, and a backing file numbered 1 (if any) takes the root's number.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::pending::{read_backing, PendingFile};

/// How long the kernel may trust what we tell it. Zero, as LazyFS does: a
/// power loss changes file contents and sizes behind the kernel's back, and
/// the invalidation we send then must not race a cached answer.
const TTL: Duration = Duration::ZERO;

/// What a power loss dropped, or what one would drop now, in the files
/// that have a name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unsynced {
    /// Bytes written and not synced.
    pub bytes: u64,
    /// Files with unsynced writes or size changes.
    pub files: usize,
}

impl std::fmt::Display for Unsynced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes in {} files", self.bytes, self.files)
    }
}

/// One inode the kernel has seen.
#[derive(Debug, Default)]
struct Node {
    /// One of its names, relative to the backing root (the last one used).
    path: PathBuf,
    /// Unsynced contents, if any.
    pending: Option<PendingFile>,
    /// When the unsynced contents last changed: shown as its mtime.
    modified: Option<SystemTime>,
    /// Open file handles; all of them share `file`.
    open_handles: u32,
    /// The backing file while it is open, so that an open file keeps
    /// working after it is unlinked or renamed.
    file: Option<File>,
    /// Its last name is gone: its pending data goes once it is closed.
    unlinked: bool,
}

/// The mount's state, shared by the FUSE threads and the [`Controller`].
///
/// [`Controller`]: crate::Controller
#[derive(Debug)]
pub(crate) struct State {
    backing: PathBuf,
    /// The backing root's own inode number, swapped with FUSE's 1.
    root_ino: u64,
    nodes: HashMap<u64, Node>,
    /// Directory listings, taken at `opendir` so a listing read in several
    /// calls stays consistent.
    listings: HashMap<u64, Vec<(u64, FileType, OsString)>>,
    next_listing: u64,
}

impl State {
    pub(crate) fn new(backing: &Path) -> io::Result<State> {
        let metadata = std::fs::metadata(backing)?;
        if !metadata.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("backing {} is not a directory", backing.display()),
            ));
        }
        let mut nodes = HashMap::new();
        nodes.insert(INodeNo::ROOT.0, Node::default());
        Ok(State {
            backing: backing.to_path_buf(),
            root_ino: metadata.ino(),
            nodes,
            listings: HashMap::new(),
            next_listing: 1,
        })
    }

    /// What a power loss would take from files that have a name. A file
    /// whose last name is gone cannot survive a crash anyway, and its data
    /// goes when the kernel releases it, which happens some time after the
    /// last close: counting it would make the count racy.
    pub(crate) fn unsynced(&self) -> Unsynced {
        let mut unsynced = Unsynced::default();
        let named = self.nodes.values().filter(|node| !node.unlinked);
        for pending in named.filter_map(|node| node.pending.as_ref()) {
            unsynced.bytes += pending.unsynced_bytes();
            unsynced.files += 1;
        }
        unsynced
    }

    /// Drops every file's unsynced data; returns what was dropped and the
    /// inodes whose kernel caches must now be invalidated.
    pub(crate) fn drop_unsynced(&mut self) -> (Unsynced, Vec<u64>) {
        let dropped = self.unsynced();
        let mut changed = Vec::new();
        for (&ino, node) in &mut self.nodes {
            if node.pending.take().is_some() {
                node.modified = None;
                changed.push(ino);
            }
        }
        (dropped, changed)
    }

    fn fuse_ino(&self, backing_ino: u64) -> u64 {
        if backing_ino == self.root_ino {
            INodeNo::ROOT.0
        } else if backing_ino == INodeNo::ROOT.0 {
            self.root_ino
        } else {
            backing_ino
        }
    }

    fn node(&mut self, ino: INodeNo) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)
    }

    /// The backing path of an inode's current name.
    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        let node = self.nodes.get(&ino.0).ok_or(Errno::ENOENT)?;
        Ok(self.backing.join(&node.path))
    }

    /// The relative path of `name` in directory `parent`.
    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        let node = self.nodes.get(&parent.0).ok_or(Errno::ENOENT)?;
        Ok(node.path.join(name))
    }

    /// Records that `relative` names a backing file with `metadata`, and
    /// returns its attributes.
    fn remember(&mut self, relative: PathBuf, metadata: &Metadata) -> FileAttr {
        let ino = self.fuse_ino(metadata.ino());
        let node = self.nodes.entry(ino).or_default();
        node.path = relative;
        node.unlinked = false;
        attr(ino, metadata, node)
    }

    /// Looks `name` up in `parent` on the backing directory.
    fn lookup(&mut self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
        let relative = self.child(parent, name)?;
        let metadata = std::fs::symlink_metadata(self.backing.join(&relative))?;
        Ok(self.remember(relative, &metadata))
    }

    fn getattr(&mut self, ino: INodeNo) -> Result<FileAttr, Errno> {
        let path = self.path(ino)?;
        let node = self.node(ino)?;
        let metadata = match &node.file {
            Some(file) => file.metadata()?,
            None => std::fs::symlink_metadata(path)?,
        };
        Ok(attr(ino.0, &metadata, node))
    }

    /// The size of the backing file, which unsynced state starts from.
    fn backing_len(&self, ino: INodeNo) -> Result<u64, Errno> {
        let node = self.nodes.get(&ino.0).ok_or(Errno::ENOENT)?;
        Ok(match &node.file {
            Some(file) => file.metadata()?.len(),
            None => std::fs::metadata(self.backing.join(&node.path))?.len(),
        })
    }

    /// The unsynced contents of `ino` (started over its backing file if it
    /// has none), about to change now.
    fn pending_for_change(&mut self, ino: INodeNo) -> Result<&mut PendingFile, Errno> {
        let backing_len = match self.nodes.get(&ino.0).ok_or(Errno::ENOENT)?.pending {
            Some(_) => 0,
            None => self.backing_len(ino)?,
        };
        let node = self.node(ino)?;
        node.modified = Some(SystemTime::now());
        Ok(node
            .pending
            .get_or_insert_with(|| PendingFile::new(backing_len)))
    }

    /// Opens (or shares) the backing file of `ino` for a new handle.
    fn open(&mut self, ino: INodeNo) -> Result<(), Errno> {
        let path = self.path(ino)?;
        let node = self.node(ino)?;
        if node.file.is_none() {
            node.file = Some(open_backing(&path)?);
        }
        node.open_handles += 1;
        Ok(())
    }

    fn release(&mut self, ino: INodeNo) -> Result<(), Errno> {
        let node = self.node(ino)?;
        node.open_handles = node.open_handles.saturating_sub(1);
        if node.open_handles == 0 {
            node.file = None;
            if node.unlinked {
                node.pending = None;
                node.modified = None;
            }
        }
        Ok(())
    }

    fn read(&mut self, ino: INodeNo, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let node = self.node(ino)?;
        let file = node.file.as_ref().ok_or(Errno::EBADF)?;
        let data = match &node.pending {
            Some(pending) => {
                pending.read(offset, size as usize, |at, buf| read_backing(file, at, buf))?
            }
            None => {
                let len = file.metadata()?.len();
                let end = len.min(offset.saturating_add(u64::from(size)));
                let mut buf = vec![0; end.saturating_sub(offset) as usize];
                read_backing(file, offset, &mut buf)?;
                buf
            }
        };
        Ok(data)
    }

    /// Writes the unsynced contents of `ino` to its backing file and syncs
    /// it: after this they survive a power loss.
    fn fsync(&mut self, ino: INodeNo, datasync: bool) -> Result<(), Errno> {
        let path = self.path(ino)?;
        let node = self.node(ino)?;
        let Some(pending) = &node.pending else {
            return Ok(());
        };
        let reopened;
        let file = match &node.file {
            Some(file) => file,
            None => {
                reopened = open_backing(&path)?;
                &reopened
            }
        };
        pending.write_to(file)?;
        if datasync {
            file.sync_data()?;
        } else {
            file.sync_all()?;
        }
        node.pending = None;
        node.modified = None;
        Ok(())
    }

    /// Marks the inode of backing file `metadata`, whose name is about to
    /// go, as unlinked if that name is its last; its unsynced data goes
    /// now if no one has it open.
    fn forget_last_name(&mut self, metadata: &Metadata) {
        if metadata.nlink() > 1 || metadata.is_dir() {
            return;
        }
        let ino = self.fuse_ino(metadata.ino());
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.unlinked = true;
            if node.open_handles == 0 {
                node.pending = None;
                node.modified = None;
            }
        }
    }

    /// Moves the remembered names under `from` to under `to`.
    fn rename_paths(&mut self, from: &Path, to: &Path) {
        for node in self.nodes.values_mut() {
            if let Ok(rest) = node.path.strip_prefix(from) {
                node.path = if rest.as_os_str().is_empty() {
                    to.to_path_buf()
                } else {
                    to.join(rest)
                };
            }
        }
    }

    fn rename(
        &mut self,
        parent: INodeNo,
        name: &OsStr,
        new_parent: INodeNo,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let from = self.child(parent, name)?;
        let to = self.child(new_parent, new_name)?;
        let replaced = std::fs::symlink_metadata(self.backing.join(&to)).ok();
        if flags.is_empty() {
            std::fs::rename(self.backing.join(&from), self.backing.join(&to))?;
        } else {
            renameat2(&self.backing.join(&from), &self.backing.join(&to), flags)?;
        }
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            let swap = from.with_file_name(".powerloss-fs-exchange");
            self.rename_paths(&from, &swap);
            self.rename_paths(&to, &from);
            self.rename_paths(&swap, &to);
        } else {
            if let Some(replaced) = replaced {
                self.forget_last_name(&replaced);
            }
            self.rename_paths(&from, &to);
        }
        Ok(())
    }

    fn setattr(&mut self, ino: INodeNo, change: AttrChange) -> Result<FileAttr, Errno> {
        let path = self.path(ino)?;
        let node = self.node(ino)?;
        if let Some(mode) = change.mode {
            let permissions = std::fs::Permissions::from_mode(mode & 0o7777);
            match &node.file {
                Some(file) => file.set_permissions(permissions)?,
                None => std::fs::set_permissions(&path, permissions)?,
            }
        }
        if change.uid.is_some() || change.gid.is_some() {
            match &node.file {
                Some(file) => std::os::unix::fs::fchown(file, change.uid, change.gid)?,
                None => std::os::unix::fs::lchown(&path, change.uid, change.gid)?,
            }
        }
        if change.atime.is_some() || change.mtime.is_some() {
            set_times(&path, node.file.as_ref(), change.atime, change.mtime)?;
            // An explicit mtime replaces the one shown for unsynced writes.
            if change.mtime.is_some() {
                node.modified = None;
            }
        }
        if let Some(size) = change.size {
            self.pending_for_change(ino)?.set_size(size);
        }
        self.getattr(ino)
    }

    fn create(
        &mut self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<FileAttr, Errno> {
        let relative = self.child(parent, name)?;
        let path = self.backing.join(&relative);
        let mut options = File::options();
        options.read(true).write(true).mode(mode & 0o7777);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        } else {
            options.create(true);
        }
        let file = options.open(&path)?;
        // The daemon's own umask must not change the mode asked for.
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        give_to_caller(&path, req)?;
        let metadata = file.metadata()?;
        let attr = self.remember(relative, &metadata);
        let node = self.node(INodeNo(attr.ino.0))?;
        node.file.get_or_insert(file);
        node.open_handles += 1;
        if flags & libc::O_TRUNC != 0 && attr.size > 0 {
            self.pending_for_change(attr.ino)?.set_size(0);
            return self.getattr(attr.ino);
        }
        Ok(attr)
    }

    fn opendir(&mut self, ino: INodeNo) -> Result<u64, Errno> {
        let path = self.path(ino)?;
        let parent = std::fs::metadata(path.join(".."))?;
        let mut listing = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (
                self.fuse_ino(parent.ino()),
                FileType::Directory,
                OsString::from(".."),
            ),
        ];
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let Some(kind) = FileType::from_std(entry.file_type()?) else {
                continue;
            };
            listing.push((self.fuse_ino(entry.ino()), kind, entry.file_name()));
        }
        let handle = self.next_listing;
        self.next_listing += 1;
        self.listings.insert(handle, listing);
        Ok(handle)
    }
}

/// The attributes of `setattr` this file system acts on.
struct AttrChange {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

/// The attributes of inode `ino`: the backing file's, with the size and
/// mtime of its unsynced contents if it has any.
fn attr(ino: u64, metadata: &Metadata, node: &Node) -> FileAttr {
    let time = |secs: i64, nanos: i64| {
        if secs >= 0 {
            UNIX_EPOCH + Duration::new(secs as u64, nanos as u32)
        } else {
            UNIX_EPOCH - Duration::new(secs.unsigned_abs(), 0)
        }
    };
    let (size, blocks) = match &node.pending {
        Some(pending) => (pending.size(), pending.size().div_ceil(512)),
        None => (metadata.size(), metadata.blocks()),
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks,
        atime: time(metadata.atime(), metadata.atime_nsec()),
        mtime: node
            .modified
            .unwrap_or_else(|| time(metadata.mtime(), metadata.mtime_nsec())),
        ctime: time(metadata.ctime(), metadata.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind: file_type(metadata),
        perm: (metadata.mode() & 0o7777) as u16,
        nlink: metadata.nlink() as u32,
        uid: metadata.uid(),
        gid: metadata.gid(),
        rdev: metadata.rdev() as u32,
        blksize: metadata.blksize() as u32,
        flags: 0,
    }
}

fn file_type(metadata: &Metadata) -> FileType {
    let kind = metadata.file_type();
    FileType::from_std(kind).unwrap_or(if kind.is_fifo() {
        FileType::NamedPipe
    } else {
        FileType::RegularFile
    })
}

/// Opens a backing file for reading and writing (to read the merged view
/// and to write it through on `fsync`), or only for reading where writing
/// is refused.
fn open_backing(path: &Path) -> io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .or_else(|_| File::options().read(true).open(path))
}

/// Gives a new file to the user who created it, as a kernel file system
/// would (only possible, and only needed, when the daemon runs as root).
fn give_to_caller(path: &Path, req: &Request) -> io::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::lchown(path, Some(req.uid()), Some(req.gid()))?;
    }
    Ok(())
}

fn set_times(
    path: &Path,
    file: Option<&File>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
) -> io::Result<()> {
    let timespec = |time: Option<TimeOrNow>| match time {
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(at)) => {
            let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
            libc::timespec {
                tv_sec: since.as_secs() as libc::time_t,
                tv_nsec: i64::from(since.subsec_nanos()),
            }
        }
    };
    let times = [timespec(atime), timespec(mtime)];
    let result = match file {
        // SAFETY: the descriptor is open and `times` holds two timespecs.
        Some(file) => unsafe {
            libc::futimens(std::os::fd::AsRawFd::as_raw_fd(file), times.as_ptr())
        },
        None => {
            let path = c_path(path)?;
            // SAFETY: `path` is NUL-terminated and `times` holds two timespecs.
            unsafe {
                libc::utimensat(
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    times.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            }
        }
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn renameat2(from: &Path, to: &Path, flags: RenameFlags) -> io::Result<()> {
    let (from, to) = (c_path(from)?, c_path(to)?);
    // SAFETY: both paths are NUL-terminated.
    let result = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags.bits(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

fn os_result(result: libc::c_int) -> Result<(), Errno> {
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().into())
    }
}

/// The file system handed to `fuser`.
#[derive(Debug)]
pub struct PowerLossFs {
    state: Arc<Mutex<State>>,
}

impl PowerLossFs {
    pub(crate) fn new(state: Arc<Mutex<State>>) -> PowerLossFs {
        PowerLossFs { state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic in one request must not wedge the whole mount.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn reply_entry(reply: ReplyEntry, result: Result<FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(errno) => reply.error(errno),
    }
}

fn reply_attr(reply: ReplyAttr, result: Result<FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.attr(&TTL, &attr),
        Err(errno) => reply.error(errno),
    }
}

fn reply_empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(errno) => reply.error(errno),
    }
}

impl Filesystem for PowerLossFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(reply, self.state().lookup(parent, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        reply_attr(reply, self.state().getattr(ino));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        reply_attr(reply, self.state().setattr(ino, change));
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let result = self
            .state()
            .path(ino)
            .and_then(|path| Ok(std::fs::read_link(path)?));
        match result {
            Ok(target) => reply.data(target.as_os_str().as_bytes()),
            Err(errno) => reply.error(errno),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        let result = state.child(parent, name).and_then(|relative| {
            let path = state.backing.join(&relative);
            let c = c_path(&path)?;
            // SAFETY: `c` is NUL-terminated.
            os_result(unsafe { libc::mknod(c.as_ptr(), mode & !umask, libc::dev_t::from(rdev)) })?;
            give_to_caller(&path, req)?;
            let metadata = std::fs::symlink_metadata(&path)?;
            Ok(state.remember(relative, &metadata))
        });
        reply_entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        let result = state.child(parent, name).and_then(|relative| {
            let path = state.backing.join(&relative);
            std::fs::create_dir(&path)?;
            std::fs::set_permissions(&path, PermissionsExt::from_mode(mode & !umask & 0o7777))?;
            give_to_caller(&path, req)?;
            let metadata = std::fs::symlink_metadata(&path)?;
            Ok(state.remember(relative, &metadata))
        });
        reply_entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = state.child(parent, name).and_then(|relative| {
            let path = state.backing.join(relative);
            let metadata = std::fs::symlink_metadata(&path)?;
            std::fs::remove_file(&path)?;
            state.forget_last_name(&metadata);
            Ok(())
        });
        reply_empty(reply, result);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let state = self.state();
        let result = state
            .child(parent, name)
            .and_then(|relative| Ok(std::fs::remove_dir(state.backing.join(relative))?));
        reply_empty(reply, result);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        let result = state.child(parent, link_name).and_then(|relative| {
            let path = state.backing.join(&relative);
            std::os::unix::fs::symlink(target, &path)?;
            give_to_caller(&path, req)?;
            let metadata = std::fs::symlink_metadata(&path)?;
            Ok(state.remember(relative, &metadata))
        });
        reply_entry(reply, result);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = self.state().rename(parent, name, newparent, newname, flags);
        reply_empty(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // No direct_io and no keep_cache: the page cache is what makes
        // shared mmap (SQLite's -shm) work, and it is dropped on each open
        // and on a power loss so it never shows lost data.
        match self.state().open(ino) {
            Ok(()) => reply.opened(FileHandle(ino.0), FopenFlags::empty()),
            Err(errno) => reply.error(errno),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(ino, offset, size) {
            Ok(data) => reply.data(&data),
            Err(errno) => reply.error(errno),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = self.state().pending_for_change(ino).map(|pending| {
            pending.write(offset, data);
        });
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(errno) => reply.error(errno),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() persists nothing: only fsync does.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.state().release(ino));
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.state().fsync(ino, datasync));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().opendir(ino) {
            Ok(handle) => reply.opened(FileHandle(handle), FopenFlags::empty()),
            Err(errno) => reply.error(errno),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.state();
        let Some(listing) = state.listings.get(&fh.0) else {
            reply.error(Errno::EBADF);
            return;
        };
        for (index, (ino, kind, name)) in listing.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), index as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.state().listings.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Names already went to the backing directory when they changed.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let backing = self.state().backing.clone();
        let result = c_path(&backing).map_err(Errno::from).and_then(|c| {
            let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: `c` is NUL-terminated and `stat` is a valid buffer.
            os_result(unsafe { libc::statvfs(c.as_ptr(), &mut stat) })?;
            Ok(stat)
        });
        match result {
            Ok(stat) => reply.statfs(
                stat.f_blocks,
                stat.f_bfree,
                stat.f_bavail,
                stat.f_files,
                stat.f_ffree,
                stat.f_bsize as u32,
                stat.f_namemax as u32,
                stat.f_frsize as u32,
            ),
            Err(errno) => reply.error(errno),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        // Checked as the daemon's user against the backing file (the tests
        // run as root, which is what they get).
        let result = self.state().path(ino).and_then(|path| {
            let c = c_path(&path)?;
            // SAFETY: `c` is NUL-terminated.
            os_result(unsafe { libc::access(c.as_ptr(), mask.bits()) })
        });
        reply_empty(reply, result);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.state().create(req, parent, name, mode & !umask, flags) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(attr.ino.0),
                FopenFlags::empty(),
            ),
            Err(errno) => reply.error(errno),
        }
    }
}

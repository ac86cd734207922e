//! `DataTree`: the znode tree, with Apache ZooKeeper's semantics as its Java client sees
//! them: path validation (`PathUtils.validatePath`, applied to `path + "1"` for sequential
//! creates), which error wins when several apply (`PrepRequestProcessor`), sequential
//! suffixes from the parent's child-version counter, and ephemeral nodes owned by a
//! session. A new tree holds only the root `/`. It never performs I/O or keeps time.
//!
//! Deviations: data is limited to `DATA_BYTES_MAX` (ZooKeeper's `jute.maxbuffer` default
//! of 1 MiB closes the connection instead; here it is `BadArguments`); there are no ACLs,
//! no `/zookeeper` system node, no container or TTL nodes, no times in `Stat`. Zxids in
//! `Stat` are those `set_zxid` names (the replicated registry stamps each transaction's);
//! a tree used on its own leaves them zero.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The largest znode data, in bytes.
pub const DATA_BYTES_MAX: usize = 1 << 20;

/// ZooKeeper's error codes, as the operations of this module and the registry client
/// return them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZkError {
    NoNode,
    NodeExists,
    NotEmpty,
    BadVersion,
    NoChildrenForEphemerals,
    /// An invalid path (or oversized data).
    BadArguments,
    SessionExpired,
    ConnectionLoss,
    /// A write sent to a server in read-only mode.
    NotReadOnly,
    /// A request that reached a server after its session moved to another one.
    SessionMoved,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
}

impl CreateMode {
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        )
    }

    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
}

/// A znode's metadata, as ZooKeeper's `Stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    /// Data version: bumped by every `set_data`.
    pub version: i32,
    /// Child version: bumped by every child create and delete.
    pub cversion: i32,
    /// The owning session of an ephemeral node, 0 for a persistent one.
    pub ephemeral_owner: u64,
    pub data_length: i32,
    pub num_children: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Znode {
    data: Vec<u8>,
    stat: Stat,
    children: BTreeSet<String>,
}

/// The znode tree. Paths are keys; each node knows its children's names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataTree {
    nodes: BTreeMap<String, Znode>,
    /// Session -> the paths of its ephemeral nodes.
    ephemerals: BTreeMap<u64, BTreeSet<String>>,
    /// The zxid the next changes are stamped with.
    zxid: i64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    pub fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Znode::default());
        Self {
            nodes,
            ephemerals: BTreeMap::new(),
            zxid: 0,
        }
    }

    /// Names the transaction the following changes belong to: creates stamp `czxid`,
    /// data changes `mzxid`, child changes the parent's `pzxid`.
    pub fn set_zxid(&mut self, zxid: i64) {
        self.zxid = zxid;
    }

    /// Creates a znode; returns the path created (with the 10-digit suffix for
    /// sequential modes). `session` owns an ephemeral node.
    pub fn create(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
        session: u64,
    ) -> Result<String, ZkError> {
        // The Java client validates first, with a stand-in digit for the suffix to come.
        if mode.is_sequential() {
            validate_path(&format!("{path}1"))?;
        } else {
            validate_path(path)?;
        }
        if data.len() > DATA_BYTES_MAX {
            return Err(ZkError::BadArguments);
        }
        // PrepRequestProcessor cuts at the last slash, so the root is the parent of "/".
        let parent_path = parent(path).unwrap_or("/");
        let parent = self.nodes.get(parent_path).ok_or(ZkError::NoNode)?;
        let created = if mode.is_sequential() {
            format!("{path}{:010}", parent.stat.cversion)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&created) {
            return Err(ZkError::NodeExists);
        }
        if parent.stat.ephemeral_owner != 0 {
            return Err(ZkError::NoChildrenForEphemerals);
        }
        let owner = if mode.is_ephemeral() { session } else { 0 };
        let name = created[parent_path.len()..]
            .trim_start_matches('/')
            .to_string();
        let zxid = self.zxid;
        let parent = self.nodes.get_mut(parent_path).expect("looked up above");
        parent.children.insert(name);
        parent.stat.cversion = parent.stat.cversion.wrapping_add(1);
        parent.stat.num_children += 1;
        parent.stat.pzxid = zxid;
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ephemeral_owner: owner,
            data_length: data.len() as i32,
            ..Stat::default()
        };
        self.nodes.insert(
            created.clone(),
            Znode {
                data: data.to_vec(),
                stat,
                children: BTreeSet::new(),
            },
        );
        if owner != 0 {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(created.clone());
        }
        debug_assert!(
            self.nodes[parent_path].children.len() as i32
                == self.nodes[parent_path].stat.num_children
        );
        Ok(created)
    }

    /// Deletes a childless znode whose version matches (`-1` matches any).
    pub fn delete(&mut self, path: &str, version: i32) -> Result<(), ZkError> {
        validate_path(path)?;
        if path == "/" {
            return Err(ZkError::BadArguments); // The root is a special path.
        }
        let parent_path = parent(path).ok_or(ZkError::BadArguments)?;
        if !self.nodes.contains_key(parent_path) {
            return Err(ZkError::NoNode);
        }
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        if version != -1 && version != node.stat.version {
            return Err(ZkError::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ZkError::NotEmpty);
        }
        let owner = node.stat.ephemeral_owner;
        self.remove(path, parent_path);
        if owner != 0 {
            if let Some(paths) = self.ephemerals.get_mut(&owner) {
                paths.remove(path);
                if paths.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        Ok(())
    }

    fn remove(&mut self, path: &str, parent_path: &str) {
        let removed = self.nodes.remove(path).expect("the node exists");
        assert!(removed.children.is_empty(), "only leaves are removed");
        let parent = self
            .nodes
            .get_mut(parent_path)
            .expect("a node's parent exists");
        let name = &path[parent_path.len()..].trim_start_matches('/');
        assert!(parent.children.remove(*name), "the parent lists its child");
        // No cversion bump: ZooKeeper's delete moves only pzxid (ZOOKEEPER-1046), so
        // cversion counts the creates ever made under a parent and the sequential
        // suffixes it numbers never repeat nor skip for a delete.
        parent.stat.num_children -= 1;
        parent.stat.pzxid = self.zxid;
    }

    /// Replaces a znode's data if its version matches (`-1` matches any).
    pub fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, ZkError> {
        validate_path(path)?;
        if data.len() > DATA_BYTES_MAX {
            return Err(ZkError::BadArguments);
        }
        let node = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
        if version != -1 && version != node.stat.version {
            return Err(ZkError::BadVersion);
        }
        node.data = data.to_vec();
        node.stat.mzxid = self.zxid;
        node.stat.version = node.stat.version.wrapping_add(1);
        node.stat.data_length = data.len() as i32;
        Ok(node.stat)
    }

    pub fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat), ZkError> {
        validate_path(path)?;
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        Ok((node.data.clone(), node.stat))
    }

    /// The stat of `path`, or `None` when it does not exist (ZooKeeper's `exists`).
    pub fn exists(&self, path: &str) -> Result<Option<Stat>, ZkError> {
        validate_path(path)?;
        Ok(self.nodes.get(path).map(|node| node.stat))
    }

    /// The names of `path`'s children, sorted.
    pub fn get_children(&self, path: &str) -> Result<Vec<String>, ZkError> {
        validate_path(path)?;
        let node = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        Ok(node.children.iter().cloned().collect())
    }

    /// Removes every ephemeral node of `session` (its expiry or close).
    pub fn close_session(&mut self, session: u64) {
        let Some(paths) = self.ephemerals.remove(&session) else {
            return;
        };
        for path in paths {
            let parent_path = parent(&path).expect("stored paths are valid");
            self.remove(&path, parent_path);
        }
    }

    /// The paths of `session`'s ephemeral nodes, sorted.
    pub fn ephemerals(&self, session: u64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|paths| paths.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How many znodes the tree holds, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The first `lines_max` znodes in path order, one line each, indented by depth,
    /// with their version, data size and ephemeral owner: what an inspector shows.
    pub fn outline(&self, lines_max: usize) -> String {
        let mut text = String::new();
        for (path, node) in self.nodes.iter().take(lines_max) {
            let depth = if path == "/" {
                0
            } else {
                path.matches('/').count()
            };
            let name = if path == "/" {
                "/"
            } else {
                &path[path.rfind('/').expect("a slash") + 1..]
            };
            text.push_str(&format!(
                "{}{name}  v{} {}B",
                "  ".repeat(depth),
                node.stat.version,
                node.data.len()
            ));
            if node.stat.ephemeral_owner != 0 {
                text.push_str(&format!(" ephemeral of {:#x}", node.stat.ephemeral_owner));
            }
            text.push('\n');
        }
        if self.nodes.len() > lines_max {
            text.push_str(&format!("... and {} more\n", self.nodes.len() - lines_max));
        }
        text
    }
}

/// The parent of a valid path (`"/"` for a top-level node); `None` for the root.
fn parent(path: &str) -> Option<&str> {
    let last_slash = path.rfind('/')?;
    if path == "/" {
        return None;
    }
    Some(if last_slash == 0 {
        "/"
    } else {
        &path[..last_slash]
    })
}

/// ZooKeeper's `PathUtils.validatePath`, over UTF-16 code units as Java sees a string.
pub fn validate_path(path: &str) -> Result<(), ZkError> {
    let units: Vec<u16> = path.encode_utf16().collect();
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    if units.first() != Some(&slash) {
        return Err(ZkError::BadArguments); // Empty, or not absolute.
    }
    if units.len() == 1 {
        return Ok(()); // The root.
    }
    if units.last() == Some(&slash) {
        return Err(ZkError::BadArguments);
    }
    let ends_name = |i: usize| i + 1 == units.len() || units[i + 1] == slash;
    for i in 1..units.len() {
        let (c, last) = (units[i], units[i - 1]);
        let invalid = c == 0
            || (c == slash && last == slash)
            || (c == dot && last == dot && units[i - 2] == slash && ends_name(i))
            || (c == dot && last == slash && ends_name(i))
            || (0x0001..=0x001f).contains(&c)
            || (0x007f..=0x009f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || (0xfff0..=0xffff).contains(&c);
        if invalid {
            return Err(ZkError::BadArguments);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::CreateMode::*;
    use super::*;

    #[test]
    fn the_outline_lists_znodes_by_path_and_is_bounded() {
        let mut tree = DataTree::new();
        tree.create("/a", b"xy", Persistent, 0).unwrap();
        tree.create("/a/b", b"", Ephemeral, 0x10).unwrap();
        tree.create("/c", b"", Persistent, 0).unwrap();
        assert_eq!(
            tree.outline(10),
            "/  v0 0B\n  a  v0 2B\n    b  v0 0B ephemeral of 0x10\n  c  v0 0B\n"
        );
        assert_eq!(tree.outline(2), "/  v0 0B\n  a  v0 2B\n... and 2 more\n");
    }

    #[test]
    fn a_new_tree_holds_only_the_root() {
        let tree = DataTree::new();
        assert_eq!(tree.get_children("/"), Ok(vec![]));
        assert_eq!(tree.get_data("/zookeeper"), Err(ZkError::NoNode));
        assert_eq!(tree.node_count(), 1);
    }

    #[test]
    fn paths_follow_zookeepers_path_utils() {
        for valid in [
            "/", "/a", "/a/b", "/...", "/a.b", "/.a", "/a..", "/é", "/a b",
        ] {
            assert_eq!(validate_path(valid), Ok(()), "{valid:?}");
        }
        for invalid in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a\0b",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{9f}",
            "/\u{e000}",
            "/\u{f8ff}",
            "/\u{fff0}",
            "/\u{ffff}",
            "/\u{1f600}",
        ] {
            assert_eq!(
                validate_path(invalid),
                Err(ZkError::BadArguments),
                "{invalid:?}"
            );
        }
    }

    #[test]
    fn sequential_nodes_take_the_parents_child_version_as_a_ten_digit_suffix() {
        let mut tree = DataTree::new();
        tree.create("/q", b"", Persistent, 0).unwrap();
        assert_eq!(
            tree.create("/q/job-", b"", PersistentSequential, 0),
            Ok("/q/job-0000000000".into())
        );
        tree.create("/q/other", b"", Persistent, 0).unwrap();
        tree.delete("/q/other", -1).unwrap();
        // Two children created and one deleted: the counter counts the two creates.
        assert_eq!(
            tree.create("/q/job-", b"", EphemeralSequential, 9),
            Ok("/q/job-0000000002".into())
        );
        assert_eq!(
            tree.get_children("/q"),
            Ok(vec!["job-0000000000".into(), "job-0000000002".into()])
        );
    }

    #[test]
    fn a_sequential_path_may_end_with_a_slash_because_the_client_checks_path_plus_1() {
        let mut tree = DataTree::new();
        tree.create("/q", b"", Persistent, 0).unwrap();
        assert_eq!(
            tree.create("/q/", b"", PersistentSequential, 0),
            Ok("/q/0000000000".into())
        );
        assert_eq!(
            tree.create("/q/", b"", Persistent, 0),
            Err(ZkError::BadArguments)
        );
    }

    #[test]
    fn create_errors_come_in_zookeepers_order() {
        let mut tree = DataTree::new();
        // An invalid path beats a missing parent.
        assert_eq!(
            tree.create("/missing/./x", b"", Persistent, 0),
            Err(ZkError::BadArguments)
        );
        assert_eq!(
            tree.create("/missing/x", b"", Persistent, 0),
            Err(ZkError::NoNode)
        );
        tree.create("/e", b"", Ephemeral, 5).unwrap();
        assert_eq!(
            tree.create("/e/child", b"", Persistent, 0),
            Err(ZkError::NoChildrenForEphemerals)
        );
        assert_eq!(
            tree.create("/e", b"", Persistent, 0),
            Err(ZkError::NodeExists)
        );
        assert_eq!(
            tree.create("/", b"", Persistent, 0),
            Err(ZkError::NodeExists)
        );
        // One child created so far: the root's counter stands at 1.
        let sequential = tree.create("/", b"", PersistentSequential, 0);
        assert_eq!(sequential, Ok("/0000000001".into()));
    }

    #[test]
    fn delete_checks_version_before_emptiness() {
        let mut tree = DataTree::new();
        tree.create("/a", b"", Persistent, 0).unwrap();
        tree.create("/a/b", b"", Persistent, 0).unwrap();
        assert_eq!(tree.delete("/a", 7), Err(ZkError::BadVersion));
        assert_eq!(tree.delete("/a", 0), Err(ZkError::NotEmpty));
        assert_eq!(tree.delete("/a/nope", -1), Err(ZkError::NoNode));
        assert_eq!(tree.delete("/nope/b", -1), Err(ZkError::NoNode));
        assert_eq!(tree.delete("/", -1), Err(ZkError::BadArguments));
        tree.delete("/a/b", 0).unwrap();
        tree.delete("/a", -1).unwrap();
        assert_eq!(tree.get_children("/"), Ok(vec![]));
    }

    #[test]
    fn set_data_bumps_the_version_and_checks_the_expected_one() {
        let mut tree = DataTree::new();
        tree.create("/a", b"one", Persistent, 0).unwrap();
        let stat = tree.set_data("/a", b"two", 0).unwrap();
        assert_eq!((stat.version, stat.data_length), (1, 3));
        assert_eq!(tree.set_data("/a", b"three", 0), Err(ZkError::BadVersion));
        assert_eq!(tree.set_data("/a", b"three", -1).map(|s| s.version), Ok(2));
        assert_eq!(
            tree.get_data("/a").map(|(data, _)| data),
            Ok(b"three".to_vec())
        );
        assert_eq!(tree.set_data("/b", b"", -1), Err(ZkError::NoNode));
    }

    #[test]
    fn stats_count_children_and_child_changes() {
        let mut tree = DataTree::new();
        tree.create("/p", b"", Persistent, 0).unwrap();
        tree.create("/p/a", b"", Persistent, 0).unwrap();
        tree.create("/p/b", b"", Persistent, 0).unwrap();
        tree.delete("/p/a", -1).unwrap();
        let (_, stat) = tree.get_data("/p").unwrap();
        assert_eq!(
            (stat.num_children, stat.cversion, stat.version),
            (1, 2, 0),
            "a delete moves pzxid, not cversion"
        );
    }

    #[test]
    fn a_delete_does_not_advance_the_sequence() {
        let mut tree = DataTree::new();
        tree.create("/q", b"", Persistent, 0).unwrap();
        let first = tree.create("/q/n-", b"", PersistentSequential, 0).unwrap();
        tree.delete(&first, -1).unwrap();
        let second = tree.create("/q/n-", b"", PersistentSequential, 0).unwrap();
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("/q/n-0000000000", "/q/n-0000000001")
        );
    }

    #[test]
    fn closing_a_session_removes_its_ephemeral_nodes_only() {
        let mut tree = DataTree::new();
        tree.create("/services", b"", Persistent, 0).unwrap();
        tree.create("/services/a", b"", Ephemeral, 1).unwrap();
        tree.create("/services/b", b"", EphemeralSequential, 1)
            .unwrap();
        tree.create("/services/c", b"", Ephemeral, 2).unwrap();
        assert_eq!(tree.get_data("/services/a").unwrap().1.ephemeral_owner, 1);
        tree.close_session(1);
        assert_eq!(tree.get_children("/services"), Ok(vec!["c".into()]));
        assert_eq!(tree.ephemerals(1), Vec::<String>::new());
        assert_eq!(tree.ephemerals(2), vec!["/services/c".to_string()]);
    }

    #[test]
    fn oversized_data_is_refused() {
        let mut tree = DataTree::new();
        let big = vec![0u8; DATA_BYTES_MAX + 1];
        assert_eq!(
            tree.create("/big", &big, Persistent, 0),
            Err(ZkError::BadArguments)
        );
    }
}

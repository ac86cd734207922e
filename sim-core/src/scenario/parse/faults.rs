//! The fault half of a scenario: the scripted `[[faults]]` (crash, restart, pause, resume,
//! partitions one-way or not, heal, clock skew, disk faults) with their node ids and
//! groups checked against the cluster, and the `[nemesis]` generator's settings. Methods
//! of `Reader`, which owns error collection; this file only reads these tables.

use super::*;

impl Reader<'_> {
    pub(super) fn faults(
        &mut self,
        root: &DeTable<'_>,
        node_count: u32,
        duration_ns: u64,
    ) -> Vec<ScheduledFault> {
        let mut faults = Vec::new();
        for (table, at) in self.tables(root, "faults") {
            let Some(action) = self.required_string(table, "action", at) else {
                continue;
            };
            let keys: &[&str] = match action.as_str() {
                "crash" | "restart" | "pause" | "resume" => &["at", "action", "node"],
                "partition" => &["at", "action", "groups"],
                "partition-one-way" => &["at", "action", "from", "to"],
                "heal" => &["at", "action"],
                "clock-skew" => &["at", "action", "node", "offset", "drift_ppm"],
                "disk-fault" => &["at", "action", "node", "torn_writes", "lost_syncs"],
                other => {
                    let at = get(table, "action").map(|v| v.span().start).unwrap_or(at);
                    self.error(at, unknown("fault action", other, FAULT_ACTIONS));
                    continue;
                }
            };
            self.check_keys(table, keys, &format!("a `{action}` fault"));
            let last_ns = duration_ns.saturating_sub(1) as i128;
            let at_ns = match get(table, "at") {
                Some(_) => self.duration(table, "at", 0, last_ns),
                None => {
                    self.error(
                        at,
                        "missing key `at` (when the fault strikes, inside `duration`)".into(),
                    );
                    None
                }
            };
            if let (Some(at_ns), Some(fault)) = (at_ns, self.fault(table, &action, node_count, at))
            {
                faults.push(ScheduledFault {
                    at_ns: at_ns as u64,
                    fault,
                });
            }
        }
        faults
    }

    pub(super) fn fault(
        &mut self,
        table: &DeTable<'_>,
        action: &str,
        node_count: u32,
        at: usize,
    ) -> Option<Fault> {
        let fault = match action {
            "crash" => Fault::Crash {
                node: self.node_id_key(table, "node", node_count, at)?,
            },
            "restart" => Fault::Restart {
                node: self.node_id_key(table, "node", node_count, at)?,
            },
            "pause" => Fault::Pause {
                node: self.node_id_key(table, "node", node_count, at)?,
            },
            "resume" => Fault::Resume {
                node: self.node_id_key(table, "node", node_count, at)?,
            },
            "heal" => Fault::Heal,
            "partition" => Fault::Partition {
                groups: self.groups(table, node_count, at)?,
            },
            "partition-one-way" => {
                let from = self.node_list(table, "from", node_count, at);
                let to = self.node_list(table, "to", node_count, at);
                Fault::PartitionOneWay {
                    from: from?,
                    to: to?,
                }
            }
            "clock-skew" => {
                let node = self.node_id_key(table, "node", node_count, at);
                let offset_ns = self
                    .duration(table, "offset", -DURATION_NS_MAX, DURATION_NS_MAX)
                    .unwrap_or(0);
                let drift_ppm = self
                    .integer(table, "drift_ppm", -DRIFT_PPM_MAX, DRIFT_PPM_MAX)
                    .unwrap_or(0);
                Fault::ClockSkew {
                    node: node?,
                    offset_ns: offset_ns as i64,
                    drift_ppm: drift_ppm as i32,
                }
            }
            "disk-fault" => {
                let node = self.node_id_key(table, "node", node_count, at);
                let torn_write_ppm = self.probability(table, "torn_writes").unwrap_or(0);
                let lost_sync_ppm = self.probability(table, "lost_syncs").unwrap_or(0);
                Fault::DiskFault {
                    node: node?,
                    faults: DiskFaults {
                        torn_write_ppm,
                        lost_sync_ppm,
                    },
                }
            }
            _ => unreachable!("actions are checked by the caller"),
        };
        Some(fault)
    }

    pub(super) fn groups(
        &mut self,
        table: &DeTable<'_>,
        node_count: u32,
        at: usize,
    ) -> Option<Vec<Vec<NodeId>>> {
        let Some(items) = self.array(table, "groups") else {
            self.error(
                at,
                "missing key `groups` (an array of arrays of node ids, e.g. [[0, 1], [2]])".into(),
            );
            return None;
        };
        let mut groups = Vec::new();
        let mut seen = vec![false; node_count as usize];
        for item in items.iter() {
            let DeValue::Array(members) = item.get_ref() else {
                self.wrong_type(
                    item,
                    "groups",
                    "an array of arrays of node ids",
                    item.get_ref(),
                );
                return None;
            };
            let mut group = Vec::new();
            for member in members.iter() {
                let node = self.node_id(member, "groups", node_count)?;
                if std::mem::replace(&mut seen[node as usize], true) {
                    self.error(
                        member.span().start,
                        format!("node {node} is in two partition groups"),
                    );
                    return None;
                }
                group.push(node);
            }
            if group.is_empty() {
                self.error(
                    item.span().start,
                    "a partition group must not be empty".into(),
                );
                return None;
            }
            groups.push(group);
        }
        if groups.is_empty() {
            self.error(at, "`groups` must hold at least one group".into());
            return None;
        }
        Some(groups)
    }

    pub(super) fn nemesis(
        &mut self,
        root: &DeTable<'_>,
        nodes: &[NodeGroup],
    ) -> Option<NemesisConfig> {
        let (table, at) = self.table(root, "nemesis")?;
        self.check_keys(table, NEMESIS_KEYS, "[nemesis]");
        let names: Vec<&str> = NemesisKind::ALL.iter().map(|k| k.name()).collect();
        let kinds = match get(table, "faults") {
            Some(_) => self
                .name_list(table, "faults", Some(&names), "nemesis fault")
                .iter()
                .filter_map(|name| NemesisKind::parse(name))
                .collect(),
            None => NemesisKind::ALL.to_vec(),
        };
        let hour = 3_600_000_000_000i128;
        let span = |reader: &mut Self, key: &str, default_ns: u64| {
            reader
                .duration(table, key, 1_000, hour)
                .map(|ns| ns as u64)
                .unwrap_or(default_ns)
        };
        let interval_ns_min = span(self, "interval_min", 200_000_000);
        let interval_ns_max = span(self, "interval_max", 1_000_000_000);
        let fault_ns_min = span(self, "fault_min", 100_000_000);
        let fault_ns_max = span(self, "fault_max", 1_000_000_000);
        let skew_ns_max = span(self, "skew_max", 1_000_000_000);
        if interval_ns_min > interval_ns_max || fault_ns_min > fault_ns_max {
            self.error(at, "a nemesis minimum exceeds its maximum".into());
            return None;
        }
        if kinds.is_empty() {
            self.error(at, "the nemesis needs at least one fault kind".into());
            return None;
        }
        let present: Vec<&str> = nodes.iter().map(|group| group.kind.as_str()).collect();
        let mut targets = self.name_list(table, "targets", Some(&present), "nemesis target kind");
        targets.sort();
        targets.dedup();
        let none_named = get(table, "targets")
            .is_some_and(|v| matches!(v.get_ref(), DeValue::Array(items) if items.is_empty()));
        if none_named {
            let at = get(table, "targets").map(|v| v.span().start).unwrap_or(at);
            self.error(
                at,
                "`targets` must name at least one node kind of this scenario".into(),
            );
            return None;
        }
        Some(NemesisConfig {
            kinds,
            interval_ns_min,
            interval_ns_max,
            fault_ns_min,
            fault_ns_max,
            skew_ns_max,
            targets,
        })
    }

    /// An array of names, each of which must be in `known` (when known is given).
    pub(super) fn name_list(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        known: Option<&[&str]>,
        what: &str,
    ) -> Vec<String> {
        let Some(items) = self.array(table, key) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for item in items.iter() {
            let DeValue::String(name) = item.get_ref() else {
                self.wrong_type(item, key, "an array of strings", item.get_ref());
                continue;
            };
            match known {
                Some(known) if !known.contains(&name.as_ref()) => {
                    self.error(item.span().start, unknown(what, name, known));
                }
                _ => names.push(name.to_string()),
            }
        }
        names
    }
}

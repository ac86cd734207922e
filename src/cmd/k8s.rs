//! `faultline swarm S --seeds N --k8s-job --shards K --image IMG`: the Kubernetes Indexed
//! Job that runs the swarm as K pods, one shard each (`--shard-from-env K` reads the pod's
//! `JOB_COMPLETION_INDEX`), each printing its `--json` report for `kubectl logs` to
//! collect and `faultline swarm merge` to combine. The manifest is JSON, which is YAML
//! too, so `kubectl apply -f` takes it as it is. It only prints; it never talks to a
//! cluster.

use serde_json::{json, Value};

/// The environment variable Kubernetes sets in each pod of an Indexed Job.
pub const INDEX_VAR: &str = "JOB_COMPLETION_INDEX";

/// What the manifest needs to know.
pub struct JobSpec<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub scenario: &'a str,
    pub seeds: u64,
    pub start: u64,
    pub bugs: &'a [String],
    pub shards: u64,
    /// Seconds one seed takes on one core, measured here (`calibrate`).
    pub seconds_per_seed: f64,
    /// Cores each pod asks for; the swarm uses as many threads.
    pub cores: u32,
}

impl JobSpec<'_> {
    /// The command every pod runs; only `JOB_COMPLETION_INDEX` tells them apart.
    pub fn command(&self) -> Vec<String> {
        let mut command = vec![
            "faultline".to_string(),
            "swarm".to_string(),
            self.scenario.to_string(),
            "--seeds".to_string(),
            self.seeds.to_string(),
            "--start".to_string(),
            self.start.to_string(),
        ];
        for bug in self.bugs {
            command.push("--bug".to_string());
            command.push(bug.clone());
        }
        command.extend([
            "--shard-from-env".to_string(),
            self.shards.to_string(),
            "--json".to_string(),
        ]);
        command
    }

    /// How long one pod should take, with room for a slow node: its seeds over its cores
    /// at the measured rate, times 3, plus 5 minutes to start.
    pub fn deadline_seconds(&self) -> u64 {
        let per_shard = self.seeds.div_ceil(self.shards) as f64;
        (per_shard * self.seconds_per_seed / self.cores as f64 * 3.0) as u64 + 300
    }

    pub fn manifest(&self) -> Value {
        let cpu = self.cores.to_string();
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": self.name,
                "labels": { "app.kubernetes.io/name": "faultline" },
                "annotations": {
                    "faultline/scenario": self.scenario,
                    "faultline/seeds": self.seeds.to_string(),
                    "faultline/seconds-per-seed-per-core": format!("{:.4}", self.seconds_per_seed),
                    "faultline/merge": format!(
                        "for i in $(seq 0 {last}); do kubectl logs -l job-name={name},\
                         batch.kubernetes.io/job-completion-index=$i > shard-$i.json; done; \
                         faultline swarm merge shard-*.json",
                        last = self.shards - 1,
                        name = self.name
                    ),
                },
            },
            "spec": {
                "completionMode": "Indexed",
                "completions": self.shards,
                "parallelism": self.shards,
                "backoffLimit": self.shards,
                "activeDeadlineSeconds": self.deadline_seconds(),
                "template": {
                    "metadata": { "labels": { "app.kubernetes.io/name": "faultline" } },
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{
                            "name": "swarm",
                            "image": self.image,
                            "command": self.command(),
                            "env": [{ "name": "RAYON_NUM_THREADS", "value": cpu }],
                            "resources": {
                                "requests": { "cpu": cpu, "memory": "512Mi" },
                                "limits": { "cpu": cpu, "memory": "1Gi" },
                            },
                        }],
                    },
                },
            },
        })
    }
}

/// The shard index from the pod's environment: `JOB_COMPLETION_INDEX`, below `shards`.
pub fn index_from_env(shards: u64) -> Result<u64, String> {
    let text = std::env::var(INDEX_VAR).map_err(|_| {
        format!("--shard-from-env {shards}: {INDEX_VAR} is not set (Kubernetes sets it in an Indexed Job's pods)")
    })?;
    let index: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("--shard-from-env {shards}: {INDEX_VAR}=`{text}` is not a number"))?;
    if index >= shards {
        return Err(format!(
            "--shard-from-env {shards}: {INDEX_VAR}={index} is not below {shards}"
        ));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(bugs: &[String]) -> JobSpec<'_> {
        JobSpec {
            name: "swarm",
            image: "registry.example/faultline:1",
            scenario: "rpc-nemesis",
            seeds: 1_000,
            start: 0,
            bugs,
            shards: 4,
            seconds_per_seed: 0.02,
            cores: 2,
        }
    }

    #[test]
    fn each_pod_runs_its_slice_of_the_same_command() {
        let bugs = vec!["rpc.no-deadline".to_string()];
        let command = spec(&bugs).command();
        assert_eq!(
            command.join(" "),
            "faultline swarm rpc-nemesis --seeds 1000 --start 0 --bug rpc.no-deadline \
             --shard-from-env 4 --json"
        );
        // 250 seeds x 0.02 s / 2 cores x 3 + 300.
        assert_eq!(spec(&bugs).deadline_seconds(), 307);
    }
}

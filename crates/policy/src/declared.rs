//! The declared call graph: the union of a policy's rules, as edges.

use spiffe::SpiffeId;

use crate::{CompiledPolicy, DeclaredEdge, DeclaredGraph};

impl CompiledPolicy {
    /// The rules as call-graph edges, one per (rule, source pattern): those
    /// of destination `only` when given (a sidecar with `workload.id`), else
    /// every destination's. Telemetry serves it next to the observed graph
    /// (`/callgraph`), and the offline tools compare traffic with it.
    pub fn declared_graph(&self, only: Option<&SpiffeId>) -> DeclaredGraph {
        let mut edges = Vec::new();
        for destination in self.destinations() {
            if only.is_some_and(|id| id != destination) {
                continue;
            }
            let Some(workload) = self.workload(destination) else {
                continue;
            };
            for rule in &workload.rules {
                let routes: Vec<String> = rule
                    .paths
                    .iter()
                    .flatten()
                    .map(|(_, label)| label.to_string())
                    .chain(
                        rule.grpc
                            .iter()
                            .flatten()
                            .map(|(_, label)| label.to_string()),
                    )
                    .collect();
                let methods: Vec<String> = rule
                    .methods
                    .iter()
                    .flatten()
                    .map(|m| m.as_str().to_owned())
                    .collect();
                for source in &rule.from {
                    edges.push(DeclaredEdge {
                        source: source.to_string(),
                        destination: destination.to_string(),
                        rule: rule.name.to_string(),
                        routes: routes.clone(),
                        methods: methods.clone(),
                        data_class: rule.data_class,
                    });
                }
            }
        }
        DeclaredGraph { edges }
    }
}

//! A policy in several files (`policy.files`): a platform file with the
//! mesh-wide sections, and team files with their own destinations' rules.
//!
//! Each file is a policy document on its own (`version: 1`). Combined:
//! - the mesh-wide sections (`trust_domains`, `revoked`) come from at most
//!   one file, and never from a team file (one with an owner scope, its
//!   own `owner:` or one the config gives it);
//! - each destination is defined in exactly one file;
//! - every destination of a file with an owner scope matches that scope
//!   (both scopes, when the file and the config each give one).
//!
//! Every such problem names both places: it is reported where the second
//! one is, and its message gives the first one's `FILE:LINE:COL`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use hallpass_diagnostics::path::{ROOT, is_within};
use hallpass_diagnostics::{LocationIndex, Problems, codes};
use spiffe::SpiffeId;

use crate::document::PolicyDocument;
use crate::load::load_document;
use crate::locate::{child_path, item_path};
use crate::{CompiledPolicy, PolicyError, Problem, SourcePattern};

/// An owner scope a config gives a policy source (`policy.files[].owner`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerScope {
    /// Source patterns (`from` syntax); a destination must match one.
    pub patterns: Vec<SourcePattern>,
    /// Where the scope is set, for messages (`policy.files[1].owner`).
    pub origin: String,
}

impl OwnerScope {
    fn allows(&self, id: &SpiffeId) -> bool {
        self.patterns.iter().any(|p| p.matches(id))
    }

    fn shown(&self) -> String {
        let patterns: Vec<String> = self.patterns.iter().map(ToString::to_string).collect();
        format!("{} [{}]", self.origin, patterns.join(", "))
    }
}

/// One file of a policy set: its name (shown in problems), its text and
/// the owner scope the config gives it.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// The file's name, as problems show it.
    pub name: String,
    /// Its YAML text.
    pub text: String,
    /// The config's owner scope for it, if any.
    pub owner: Option<OwnerScope>,
}

/// Problem code: a mesh-wide section in a team file, or in a second file.
pub const MESH_WIDE_SECTION: &str = "mesh_wide_section";
/// Problem code: a destination outside its file's owner scope.
pub const OWNER_VIOLATION: &str = "owner_violation";

/// The mesh-wide sections: only one file of a set may set them.
const MESH_SECTIONS: [&str; 3] = ["trust_domains", "revoked", "data_classes"];

/// The policy files a configured path stands for: the file itself, or for
/// a directory every `*.yaml`/`*.yml` file directly inside it, sorted by
/// name. Names starting with `.` are skipped (a Kubernetes ConfigMap volume
/// holds `..data` and `..2026_…` entries next to its files); symlinks are
/// followed. A path that does not exist is returned as is, so reading it
/// fails the way a missing policy file does.
pub fn expand_source(path: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let io = |source| PolicyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if name.starts_with('.') || !yaml {
            continue;
        }
        // `metadata` follows symlinks: a ConfigMap's files are symlinks.
        let file = entry.path();
        if std::fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Read every file of `paths` (each a file or a directory, see
/// [`expand_source`]) as a [`PolicyFile`] without an owner scope: what the
/// command-line tools load. At least one file is needed.
pub fn read_policy_files(paths: &[PathBuf]) -> Result<Vec<PolicyFile>, PolicyError> {
    let mut files = Vec::new();
    for path in paths {
        for file in expand_source(path)? {
            let text = std::fs::read_to_string(&file).map_err(|source| PolicyError::Io {
                path: file.display().to_string(),
                source,
            })?;
            files.push(PolicyFile {
                name: file.display().to_string(),
                text,
                owner: None,
            });
        }
    }
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(PolicyError::Invalid(vec![Problem::error(
            codes::MISSING_KEY,
            ROOT,
            format!(
                "no policy file (`*.yaml` or `*.yml`) in {}",
                shown.join(", ")
            ),
        )]));
    }
    Ok(files)
}

/// One file of a set, parsed.
struct Loaded<'a> {
    file: &'a PolicyFile,
    doc: PolicyDocument,
    /// Every destination key of the file, also those cut out of `doc`.
    keys: Vec<String>,
    /// Exact IDs named by entries cut out of `doc`.
    cut_named: HashSet<SpiffeId>,
    /// Entries cut out of `doc`.
    cut: usize,
}

/// Where each part of a combined set came from, to put problems back in
/// their files.
struct Origins {
    /// Destination key → file index.
    destinations: HashMap<String, usize>,
    /// The file with the mesh-wide sections.
    mesh: Option<usize>,
}

impl Origins {
    /// The file a problem at key path `path` of the combined document is in.
    fn file_of(&self, path: &str) -> usize {
        if path.starts_with("workloads.") {
            let found = self
                .destinations
                .iter()
                .find(|(key, _)| is_within(path, &child_path("workloads", key)));
            if let Some((_, &i)) = found {
                return i;
            }
        }
        self.mesh.unwrap_or(0)
    }
}

/// `FILE:LINE:COL` of the key at `path` in `file` (`FILE` alone when the
/// place is unknown).
fn place(file: &PolicyFile, path: &str) -> String {
    match LocationIndex::for_paths(&file.text, [path]).key(path) {
        Some(at) => format!("{}:{at}", file.name),
        None => file.name.clone(),
    }
}

/// Where the key at `path` is written in `file`.
fn key_at(file: &PolicyFile, path: &str) -> Option<hallpass_diagnostics::Location> {
    LocationIndex::for_paths(&file.text, [path]).key(path)
}

/// Put each problem in its file and at its place there.
fn locate_in(files: &[&PolicyFile], found: Vec<(usize, Problem)>) -> Vec<Problem> {
    let mut by_file: BTreeMap<usize, Vec<Problem>> = BTreeMap::new();
    for (i, p) in found {
        by_file.entry(i).or_default().push(p);
    }
    let mut out = Vec::new();
    for (i, problems) in by_file {
        let Some(file) = files.get(i) else {
            continue;
        };
        let mut problems = Problems::from(problems);
        problems.locate(&file.text);
        problems.in_file(&file.name);
        problems.sort();
        out.extend(problems);
    }
    out
}

/// Parse every file; `only` cuts the other destinations' entries out of
/// the text first when `cut` (see [`CompiledPolicy::from_yaml_for`]).
fn load_all<'a>(
    files: &'a [PolicyFile],
    only: Option<&SpiffeId>,
    cut: bool,
) -> (Vec<Loaded<'a>>, Vec<Problem>) {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    for file in files {
        if cut && let Some(id) = only {
            let id = id.to_string();
            let mut cut_named = HashSet::new();
            let cut_keys = std::cell::RefCell::new(Vec::new());
            let keep = |key: &str| {
                let kept = key == id;
                if !kept {
                    cut_keys.borrow_mut().push(key.to_owned());
                }
                kept
            };
            let name = |scalar: &str| {
                if let Ok(SourcePattern::Exact(id)) = SourcePattern::parse(scalar) {
                    cut_named.insert(id);
                }
            };
            let cut_text =
                hallpass_diagnostics::yaml::keep_entries(&file.text, "workloads", keep, name);
            if let Some((text, others)) = cut_text
                && let Ok(doc) = load_document(&text)
            {
                let mut keys: Vec<String> = doc.workloads.keys().cloned().collect();
                keys.extend(cut_keys.into_inner());
                loaded.push(Loaded {
                    file,
                    doc,
                    keys,
                    cut_named,
                    cut: others,
                });
                continue;
            }
        }
        match load_document(&file.text) {
            Ok(doc) => {
                let keys = doc.workloads.keys().cloned().collect();
                loaded.push(Loaded {
                    file,
                    doc,
                    keys,
                    cut_named: HashSet::new(),
                    cut: 0,
                });
            }
            Err(found) => {
                let mut found = Problems::from(found);
                found.in_file(&file.name);
                problems.extend(found);
            }
        }
    }
    (loaded, problems)
}

fn sets_mesh_section(doc: &PolicyDocument) -> Option<&'static str> {
    if !doc.trust_domains.is_empty() {
        return MESH_SECTIONS.first().copied();
    }
    let revoked = !doc.revoked.ids.is_empty() || !doc.revoked.serials.is_empty();
    if revoked {
        return Some("revoked");
    }
    doc.data_classes.is_some().then_some("data_classes")
}

/// The problems of the set as a whole, each with the index of the file it
/// is reported in: mesh-wide sections in a team file or in two files, a
/// destination in two files, a destination outside its file's owner scope.
fn set_problems(loaded: &[Loaded<'_>]) -> (Vec<(usize, Problem)>, Origins) {
    let mut found = Vec::new();
    let mut origins = Origins {
        destinations: HashMap::new(),
        mesh: None,
    };
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, l) in loaded.iter().enumerate() {
        let mut problem = |p: Problem| found.push((i, p));
        if l.doc.version != 1 {
            problem(Problem::new(
                "version",
                format!("unsupported version {}; expected 1", l.doc.version),
            ));
        }
        // The file's own scope.
        let mut own = None;
        if let Some(patterns) = &l.doc.owner {
            let mut parsed = Vec::new();
            for (k, text) in patterns.iter().enumerate() {
                match SourcePattern::parse(text) {
                    Ok(p) => parsed.push(p),
                    Err(e) => problem(Problem::new(item_path("owner", k), e)),
                }
            }
            if patterns.is_empty() {
                problem(Problem::new(
                    "owner",
                    "an empty owner scope allows no destination; list the SPIFFE ID patterns this file may define (e.g. spiffe://TD/ns/NAME/**)",
                ));
            }
            own = Some(OwnerScope {
                patterns: parsed,
                origin: format!("`owner` at {}", place(l.file, "owner")),
            });
        }
        let scopes: Vec<&OwnerScope> = own.iter().chain(l.file.owner.as_ref()).collect();
        if let Some(section) = sets_mesh_section(&l.doc) {
            if let Some(scope) = scopes.first() {
                let platform = origins
                    .mesh
                    .and_then(|m| loaded.get(m))
                    .map(|m| format!(" ({})", place(m.file, section)))
                    .unwrap_or_default();
                problem(
                    Problem::error(
                        MESH_WIDE_SECTION,
                        section,
                        format!(
                            "a team file (owner scope: {}) cannot set the mesh-wide `{section}`; \
                             it belongs in the platform's file{platform}",
                            scope.origin
                        ),
                    )
                    .at(key_at(l.file, section)),
                );
            } else if let Some(m) = origins.mesh.and_then(|m| loaded.get(m)) {
                let first = sets_mesh_section(&m.doc).unwrap_or(section);
                problem(
                    Problem::error(
                        MESH_WIDE_SECTION,
                        section,
                        format!(
                            "mesh-wide sections come from one file, and {} sets them already; \
                             keep `trust_domains` and `revoked` in that one file",
                            place(m.file, first)
                        ),
                    )
                    .at(key_at(l.file, section)),
                );
            } else {
                origins.mesh = Some(i);
            }
        }
        for key in &l.keys {
            let at = child_path("workloads", key);
            if let Some(&first) = first_of.get(key.as_str()) {
                let elsewhere = loaded
                    .get(first)
                    .map_or_else(String::new, |f| place(f.file, &at));
                problem(
                    Problem::error(
                        codes::DUPLICATE_KEY,
                        at.clone(),
                        format!("destination `{key}` is also defined in {elsewhere}"),
                    )
                    .with_hint("each destination's rules live in exactly one file"),
                );
            } else {
                first_of.insert(key, i);
                origins.destinations.insert(key.clone(), i);
            }
            let Ok(SourcePattern::Exact(id)) = SourcePattern::parse(key) else {
                continue; // compiling reports it
            };
            for scope in &scopes {
                if !scope.patterns.is_empty() && !scope.allows(&id) {
                    problem(Problem::error(
                        OWNER_VIOLATION,
                        at.clone(),
                        format!(
                            "destination `{key}` is outside this file's owner scope ({})",
                            scope.shown()
                        ),
                    ));
                }
            }
        }
    }
    (found, origins)
}

/// The set combined into one document.
struct Combined {
    doc: PolicyDocument,
    /// Exact IDs named in entries cut out of `doc`.
    named: HashSet<SpiffeId>,
    /// Every destination of every file, also those cut out.
    destinations: HashSet<SpiffeId>,
    /// Entries cut out.
    cut: usize,
}

/// The set combined into one document (the first file defining a
/// destination wins; [`set_problems`] reports the others).
fn combine(loaded: Vec<Loaded<'_>>, origins: &Origins) -> Combined {
    let mut doc = PolicyDocument {
        version: 1,
        owner: None,
        trust_domains: Vec::new(),
        data_classes: None,
        revoked: crate::RevokedDocument::default(),
        workloads: BTreeMap::new(),
        break_glass: Vec::new(),
    };
    let mut named = HashSet::new();
    let mut cut_destinations = HashSet::new();
    let mut cut = 0;
    for (i, l) in loaded.into_iter().enumerate() {
        if origins.mesh == Some(i) {
            doc.trust_domains = l.doc.trust_domains;
            doc.data_classes = l.doc.data_classes;
            doc.revoked = l.doc.revoked;
        }
        // Emergency grants may be written in any file; each names its `to`.
        doc.break_glass.extend(l.doc.break_glass);
        for (key, wl) in l.doc.workloads {
            if origins.destinations.get(&key) == Some(&i) {
                doc.workloads.insert(key, wl);
            }
        }
        for key in &l.keys {
            if let Ok(SourcePattern::Exact(id)) = SourcePattern::parse(key) {
                named.insert(id.clone());
                cut_destinations.insert(id);
            }
        }
        named.extend(l.cut_named);
        cut += l.cut;
    }
    Combined {
        doc,
        named,
        destinations: cut_destinations,
        cut,
    }
}

impl CompiledPolicy {
    /// Parse, combine, check and compile a policy of several files
    /// (`policy.files`). Every problem names its file and place.
    pub fn from_files(files: &[PolicyFile]) -> Result<Self, PolicyError> {
        Self::from_files_for(files, None)
    }

    /// [`CompiledPolicy::from_files`], keeping only destination `only`'s
    /// rules when given, as [`CompiledPolicy::from_yaml_for`] does for one
    /// file. Conflicts across the whole set are still found: every file's
    /// destination keys are read, also those cut out.
    pub fn from_files_for(
        files: &[PolicyFile],
        only: Option<&SpiffeId>,
    ) -> Result<Self, PolicyError> {
        if files.is_empty() {
            return Err(PolicyError::Invalid(vec![Problem::error(
                codes::MISSING_KEY,
                ROOT,
                "no policy file",
            )]));
        }
        if only.is_some()
            && let Ok(policy) = Self::build(files, only, true)
        {
            return Ok(policy);
        }
        Self::build(files, only, false)
    }

    fn build(
        files: &[PolicyFile],
        only: Option<&SpiffeId>,
        cut: bool,
    ) -> Result<Self, PolicyError> {
        let (loaded, mut problems) = load_all(files, only, cut);
        let refs: Vec<&PolicyFile> = loaded.iter().map(|l| l.file).collect();
        let (found, origins) = set_problems(&loaded);
        problems.extend(locate_in(&refs, found));
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        let c = combine(loaded, &origins);
        match Self::compile_scoped(&c.doc, only, c.named, c.destinations) {
            Ok(mut policy) => {
                policy.add_dropped(c.cut);
                Ok(policy)
            }
            Err(PolicyError::Invalid(found)) => {
                let found = found
                    .into_iter()
                    .map(|p| (origins.file_of(&p.path), p))
                    .collect();
                Err(PolicyError::Invalid(locate_in(&refs, found)))
            }
            Err(e) => Err(e),
        }
    }
}

/// `hallpass policy check` on a set: the located problems of every file,
/// every problem of the set as a whole (not only the first), and once the
/// set is valid, the lints of the combined policy, each in its file.
pub(crate) fn check_set(
    files: &[PolicyFile],
    lint: impl FnOnce(&PolicyDocument, &CompiledPolicy) -> Vec<Problem>,
) -> Vec<Problem> {
    let (loaded, mut problems) = load_all(files, None, false);
    let refs: Vec<&PolicyFile> = loaded.iter().map(|l| l.file).collect();
    let (found, origins) = set_problems(&loaded);
    let set_ok = found.is_empty();
    problems.extend(locate_in(&refs, found));
    let c = combine(loaded, &origins);
    match CompiledPolicy::compile_scoped(&c.doc, None, c.named, c.destinations) {
        Ok(policy) if set_ok && problems.is_empty() => {
            let findings = lint(&c.doc, &policy)
                .into_iter()
                .map(|p| (origins.file_of(&p.path), p))
                .collect();
            problems.extend(locate_in(&refs, findings));
        }
        Ok(_) => {}
        Err(PolicyError::Invalid(found)) => {
            let found = found
                .into_iter()
                .map(|p| (origins.file_of(&p.path), p))
                .collect();
            problems.extend(locate_in(&refs, found));
        }
        Err(e) => problems.push(Problem::new(ROOT, e.to_string())),
    }
    problems
}

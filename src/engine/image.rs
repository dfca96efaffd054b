//! Images: make every image a run needs available, by its pull policy, or by building a directory
//! through the engine. A built image is tagged by the blake3 of its build context and of the ids
//! of the images its Dockerfile builds on (`FROM`, `COPY --from`), so an unchanged context on
//! unchanged bases is never rebuilt, and a base rebuilt or pulled anew under the same tag rebuilds
//! it. The id of each image feeds the scenario cache key.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;

use super::docker::{Engine, EngineError, LABEL_MANAGED_BY};
use crate::config::PullPolicy;
use crate::scenario::model::ImageSource;

/// An image some scenarios need, and how to get it.
#[derive(Debug, Clone)]
pub struct Need {
    pub source: ImageSource,
    pub pull: PullPolicy,
    pub scenarios: BTreeSet<String>,
}

/// How an image was made available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obtained {
    Present,
    Pulled,
    Built,
    /// A build whose context hash matched an existing image.
    BuildCached,
}

/// An available image: the reference to create containers from, and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub reference: String,
    pub id: String,
    pub obtained: Obtained,
}

/// Collects needs, merging the same image asked for by several scenarios (the strictest pull policy wins).
#[derive(Debug, Default)]
pub struct Needs(BTreeMap<String, Need>);

impl Needs {
    pub fn add(&mut self, source: &ImageSource, pull: PullPolicy, scenario: &str) {
        let key = match source {
            ImageSource::Image(reference) => format!("image:{reference}"),
            ImageSource::Build(dir) => format!("build:{}", dir.display()),
        };
        let need =
            self.0.entry(key).or_insert_with(|| Need { source: source.clone(), pull, scenarios: BTreeSet::new() });
        need.pull = strictest(need.pull, pull);
        need.scenarios.insert(scenario.to_string());
    }

    pub fn into_vec(self) -> Vec<Need> {
        self.0.into_values().collect()
    }
}

fn strictest(a: PullPolicy, b: PullPolicy) -> PullPolicy {
    use PullPolicy::*;
    match (a, b) {
        (Always, _) | (_, Always) => Always,
        (Never, _) | (_, Never) => Never,
        _ => Missing,
    }
}

/// Makes `need` available.
pub async fn ensure(engine: &Engine, need: &Need) -> Result<Available, EngineError> {
    match &need.source {
        ImageSource::Image(reference) => ensure_image(engine, reference, need).await,
        ImageSource::Build(dir) => build(engine, dir, need).await,
    }
}

async fn ensure_image(engine: &Engine, reference: &str, need: &Need) -> Result<Available, EngineError> {
    let unavailable = |reason: String| EngineError::ImageUnavailable {
        image: reference.to_string(),
        scenarios: need.scenarios.iter().cloned().collect(),
        reason,
    };
    let local = image_id(engine, reference).await;
    match (need.pull, local) {
        (PullPolicy::Never, Some(id)) | (PullPolicy::Missing, Some(id)) => {
            Ok(Available { reference: reference.into(), id, obtained: Obtained::Present })
        }
        (PullPolicy::Never, None) => Err(unavailable(
            "it is not on the engine and its pull policy is \"never\" (build or load it first, or allow pulling)"
                .into(),
        )),
        (PullPolicy::Missing, None) | (PullPolicy::Always, _) => {
            pull(engine, reference).await.map_err(|reason| unavailable(format!("pulling it failed: {reason}")))?;
            let id = image_id(engine, reference)
                .await
                .ok_or_else(|| unavailable("it is still missing after a pull".into()))?;
            Ok(Available { reference: reference.into(), id, obtained: Obtained::Pulled })
        }
    }
}

async fn image_id(engine: &Engine, reference: &str) -> Option<String> {
    engine.docker.inspect_image(reference).await.ok().and_then(|image| image.id)
}

/// Pulls `reference` (`:latest` when it names no tag or digest, never every tag).
async fn pull(engine: &Engine, reference: &str) -> Result<(), String> {
    let name_part = reference.rsplit('/').next().unwrap_or(reference);
    let reference = if name_part.contains(':') || reference.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    };
    let options = CreateImageOptionsBuilder::default().from_image(&reference).build();
    let mut progress = engine.docker.create_image(Some(options), None, None);
    while let Some(event) = progress.next().await {
        event.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Builds the directory `dir` (which holds a Dockerfile), unless an image of the same context exists.
async fn build(engine: &Engine, dir: &Path, need: &Need) -> Result<Available, EngineError> {
    let failure = |reason: String| EngineError::Build {
        context: dir.display().to_string(),
        scenarios: need.scenarios.iter().cloned().collect(),
        reason,
    };
    let files = context_files(dir).map_err(|e| failure(format!("cannot read the build context: {e}")))?;
    let mut hasher = context_hash(dir, &files).map_err(|e| failure(format!("cannot read the build context: {e}")))?;
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap_or_default();
    // The bases, made available by the build's own pull policy, each with its id.
    for base in bases(&dockerfile) {
        let available = Box::pin(ensure_image(engine, &base, need))
            .await
            .map_err(|e| failure(format!("its base image `{base}` is not available: {e}")))?;
        hasher.update(base.as_bytes());
        hasher.update(&[0]);
        hasher.update(available.id.as_bytes());
        hasher.update(&[0xff]);
    }
    let tag = build_tag(dir, &hasher.finalize().to_hex());
    if let Some(id) = image_id(engine, &tag).await {
        return Ok(Available { reference: tag, id, obtained: Obtained::BuildCached });
    }
    let archive = context_archive(dir, &files).map_err(|e| failure(format!("cannot pack the build context: {e}")))?;
    let labels = std::collections::HashMap::from([(LABEL_MANAGED_BY, "clnrm")]);
    let options = BuildImageOptionsBuilder::default().t(&tag).rm(true).forcerm(true).labels(&labels).build();
    let mut output = engine.docker.build_image(options, None, Some(bollard::body_full(archive.into())));
    let mut log = String::new();
    while let Some(event) = output.next().await {
        match event {
            Ok(info) => {
                if let Some(error) = info.error_detail.and_then(|d| d.message) {
                    return Err(failure(format!("{error}\n{}", tail_lines(&log, 10))));
                }
                log.push_str(info.stream.as_deref().unwrap_or_default());
            }
            Err(e) => return Err(failure(format!("{e}\n{}", tail_lines(&log, 10)))),
        }
    }
    let id = image_id(engine, &tag).await.ok_or_else(|| failure("the build produced no image".into()))?;
    Ok(Available { reference: tag, id, obtained: Obtained::Built })
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `clnrm-build/<directory name>:<first 16 hex digits of the context hash>`.
fn build_tag(dir: &Path, hash: &str) -> String {
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '-' })
        .collect();
    let name = name.trim_start_matches(['.', '-', '_']);
    format!("clnrm-build/{}:{}", if name.is_empty() { "context" } else { name }, &hash[..16])
}

/// Every file and symlink under `dir`, relative, sorted (directories are implied by their contents).
fn context_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The images a Dockerfile builds on: each `FROM` and `COPY --from` that names an image rather than
/// an earlier stage (by name or number) or `scratch`, with `ARG` defaults declared before the first
/// `FROM` substituted (clnrm passes no build arguments).
fn bases(dockerfile: &str) -> Vec<String> {
    let mut args: Vec<(String, String)> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut bases: Vec<String> = Vec::new();
    let mut before_first_from = true;
    for line in instructions(dockerfile) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next().map(str::to_ascii_uppercase) else { continue };
        let words: Vec<&str> = words.collect();
        let named = match instruction.as_str() {
            "ARG" if before_first_from => {
                for word in &words {
                    let (name, default) = word.split_once('=').unwrap_or((word, ""));
                    args.push((name.to_string(), default.trim_matches('"').to_string()));
                }
                None
            }
            "FROM" => {
                before_first_from = false;
                let mut rest = words.iter().filter(|w| !w.starts_with("--"));
                let image = rest.next().map(|image| substitute(image, &args));
                if let (Some(as_), Some(stage)) = (rest.next(), rest.next())
                    && as_.eq_ignore_ascii_case("as")
                {
                    stages.push(stage.to_ascii_lowercase());
                }
                image
            }
            "COPY" | "ADD" => {
                words.iter().find_map(|w| w.strip_prefix("--from=")).map(|image| substitute(image, &args))
            }
            _ => None,
        };
        let Some(image) = named else { continue };
        let stage = stages.contains(&image.to_ascii_lowercase()) || image.bytes().all(|b| b.is_ascii_digit());
        if !stage && image != "scratch" && !image.is_empty() && !bases.contains(&image) {
            bases.push(image);
        }
    }
    bases
}

/// A Dockerfile's instructions, one string each: continuation lines joined, comments and blank
/// lines dropped.
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// `$NAME`, `${NAME}` and `${NAME:-default}` replaced by the `ARG` defaults known.
fn substitute(word: &str, args: &[(String, String)]) -> String {
    let value = |name: &str| args.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let mut out = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (expression, tail) = match after.strip_prefix('{').and_then(|inner| inner.split_once('}')) {
            Some((expression, tail)) => (expression, tail),
            None => {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        let (name, default) = expression.split_once(":-").unwrap_or((expression, ""));
        out.push_str(&value(name).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string()));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The hash of a context so far: each file's path, executable bit and content, each symlink's
/// target.
fn context_hash(dir: &Path, files: &[PathBuf]) -> std::io::Result<blake3::Hasher> {
    use std::os::unix::fs::PermissionsExt;
    let mut hasher = blake3::Hasher::new();
    for relative in files {
        let path = dir.join(relative);
        let meta = std::fs::symlink_metadata(&path)?;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(&[0, u8::from(meta.permissions().mode() & 0o111 != 0)]);
        if meta.file_type().is_symlink() {
            hasher.update(std::fs::read_link(&path)?.to_string_lossy().as_bytes());
        } else {
            let mut file = std::fs::File::open(&path)?;
            let mut buffer = [0u8; 64 * 1024];
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
        }
        hasher.update(&[0xff]);
    }
    Ok(hasher)
}

/// The context as a tar archive, as the engine's build API takes it.
fn context_archive(dir: &Path, files: &[PathBuf]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    for relative in files {
        archive.append_path_with_name(dir.join(relative), relative)?;
    }
    archive.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_hash_follows_content_names_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), "a").unwrap();
        let hash = || context_hash(dir.path(), &context_files(dir.path()).unwrap()).unwrap().finalize();
        let first = hash();
        assert_eq!(hash(), first);
        std::fs::write(dir.path().join("sub/a"), "b").unwrap();
        let second = hash();
        assert_ne!(second, first);
        std::fs::set_permissions(dir.path().join("sub/a"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(hash(), second);
        assert_eq!(context_files(dir.path()).unwrap(), [PathBuf::from("Dockerfile"), PathBuf::from("sub/a")]);
    }

    #[test]
    fn bases_are_the_images_a_dockerfile_builds_on() {
        let dockerfile = "# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\nARG TAG\n\
            FROM --platform=linux/amd64 ${BASE} AS Build\nRUN make \\\n  all\n\
            FROM build AS test\nCOPY --from=build /out /out\nCOPY --from=0 /a /a\n\
            COPY --chown=1:1 --from=tools:1 /t /t\nFROM scratch\nFROM app:${TAG:-latest}\nfrom lower:1 as x\n";
        assert_eq!(bases(dockerfile), ["debian:bookworm", "tools:1", "app:latest", "lower:1"]);
        assert!(bases("").is_empty());
    }

    #[test]
    fn build_tags_are_valid_references() {
        assert_eq!(build_tag(Path::new("/x/My App"), &"ab".repeat(32)), "clnrm-build/my-app:abababababababab");
        assert_eq!(build_tag(Path::new("/x/.hidden"), &"cd".repeat(32)), "clnrm-build/hidden:cdcdcdcdcdcdcdcd");
    }

    #[test]
    fn the_strictest_pull_policy_wins() {
        let mut needs = Needs::default();
        let image = ImageSource::Image("a:1".into());
        needs.add(&image, PullPolicy::Missing, "s1");
        needs.add(&image, PullPolicy::Never, "s2");
        let need = &needs.into_vec()[0];
        assert_eq!(need.pull, PullPolicy::Never);
        assert_eq!(need.scenarios.len(), 2);
    }
}

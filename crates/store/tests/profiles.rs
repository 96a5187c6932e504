//! Connection profiles, through a real database file.

use eddy_store::{Profile, ProfileKind, Store, StoreError};
use tempfile::TempDir;

async fn open_store() -> (TempDir, Store) {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = Store::open(directory.path().join("eddy.db"))
        .await
        .expect("open store");
    (directory, store)
}

fn local(name: &str) -> Profile {
    Profile::new(
        name,
        "127.0.0.1:19092",
        ProfileKind::Local,
        1_700_000_000_000,
    )
}

#[tokio::test]
async fn saved_profile_gets_an_id_and_is_listed() {
    let (_directory, store) = open_store().await;
    let mut profile = local("laptop");
    profile.options_json = r#"{"sasl.mechanism":"PLAIN"}"#.to_owned();

    let id = store.save_profile(&profile).await.expect("save");

    profile.id = Some(id);
    assert_eq!(store.profiles().await.expect("list"), vec![profile]);
}

#[tokio::test]
async fn saving_with_an_id_replaces_that_profile() {
    let (_directory, store) = open_store().await;
    let id = store.save_profile(&local("laptop")).await.expect("save");

    let mut changed = local("laptop renamed");
    changed.id = Some(id);
    changed.bootstrap_servers = "127.0.0.1:19092,127.0.0.1:19093".to_owned();
    changed.read_only = true;
    let saved_id = store.save_profile(&changed).await.expect("update");

    assert_eq!(saved_id, id);
    assert_eq!(store.profiles().await.expect("list"), vec![changed]);
}

#[tokio::test]
async fn remote_profiles_start_read_only() {
    let profile = Profile::new("prod", "kafka:9092", ProfileKind::Remote, 0);
    assert!(profile.read_only);
    assert!(!local("laptop").read_only);
}

#[tokio::test]
async fn profiles_are_listed_by_name_ignoring_case() {
    let (_directory, store) = open_store().await;
    for name in ["zeta", "Alpha", "beta"] {
        store.save_profile(&local(name)).await.expect("save");
    }

    let names: Vec<String> = store
        .profiles()
        .await
        .expect("list")
        .into_iter()
        .map(|profile| profile.name)
        .collect();

    assert_eq!(names, ["Alpha", "beta", "zeta"]);
}

#[tokio::test]
async fn duplicate_profile_name_is_rejected() {
    let (_directory, store) = open_store().await;
    store.save_profile(&local("laptop")).await.expect("save");

    let error = store.save_profile(&local("laptop")).await.unwrap_err();

    assert!(
        matches!(&error, StoreError::DuplicateProfileName { name } if name == "laptop"),
        "{error:?}"
    );
    assert_eq!(store.profiles().await.expect("list").len(), 1);
}

#[tokio::test]
async fn saving_an_unknown_id_is_profile_not_found() {
    let (_directory, store) = open_store().await;
    let mut profile = local("laptop");
    profile.id = Some(42);

    let error = store.save_profile(&profile).await.unwrap_err();

    assert!(
        matches!(error, StoreError::ProfileNotFound { id: 42 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn options_must_be_a_json_object() {
    let (_directory, store) = open_store().await;
    for options in ["not json", "[1, 2]", "\"text\"", ""] {
        let mut profile = local("laptop");
        profile.options_json = options.to_owned();

        let error = store.save_profile(&profile).await.unwrap_err();

        assert!(
            matches!(error, StoreError::InvalidProfile { .. }),
            "{options:?}: {error:?}"
        );
    }
    assert!(store.profiles().await.expect("list").is_empty());
}

#[tokio::test]
async fn blank_name_or_servers_are_invalid() {
    let (_directory, store) = open_store().await;
    let blank_name = local("  ");
    let mut blank_servers = local("laptop");
    blank_servers.bootstrap_servers = String::new();
    let long_name = local(&"x".repeat(eddy_store::PROFILE_NAME_MAX_CHARS + 1));

    for profile in [blank_name, blank_servers, long_name] {
        let error = store.save_profile(&profile).await.unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidProfile { .. }),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn delete_profile_reports_whether_it_existed() {
    let (_directory, store) = open_store().await;
    let id = store.save_profile(&local("laptop")).await.expect("save");

    assert!(store.delete_profile(id).await.expect("delete"));
    assert!(!store.delete_profile(id).await.expect("delete again"));
    assert!(store.profiles().await.expect("list").is_empty());
}

#[tokio::test]
async fn profiles_survive_reopening_the_file() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("eddy.db");
    let store = Store::open(&path).await.expect("open");
    let id = store.save_profile(&local("laptop")).await.expect("save");
    store.close().await;

    let reopened = Store::open(&path).await.expect("reopen");

    let profiles = reopened.profiles().await.expect("list");
    assert_eq!(profiles.len(), 1);
    assert_eq!(profiles[0].id, Some(id));
}

#[test]
fn profile_serializes_kind_in_lowercase_and_defaults_options() {
    let json = serde_json::to_value(local("laptop")).expect("serialize");
    assert_eq!(json["kind"], "local");

    let parsed: Profile = serde_json::from_str(
        r#"{"id":null,"name":"prod","bootstrap_servers":"kafka:9092",
            "kind":"remote","read_only":true,"created_ms":5}"#,
    )
    .expect("deserialize");
    assert_eq!(parsed.kind, ProfileKind::Remote);
    assert_eq!(parsed.options_json, "{}");
}

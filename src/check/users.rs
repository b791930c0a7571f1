//! The image's user: `user` from the config, looked up in the image's `/etc/passwd` and `/etc/group` as runc does.
//!
//! Pure: the files' bytes come in, numbers come out.

/// `user` from the config split into its user and group parts: `app`, `1000:1000`, `app:staff`.
pub fn split_user(user: &str) -> (&str, Option<&str>) {
    match user.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (user, None),
    }
}

/// A passwd line's user: name, uid and primary gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u64,
    pub gid: u64,
}

/// A group line: name, gid and the users listed as members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u64,
    pub members: Vec<String>,
}

/// The entry of `/etc/passwd` (its bytes) that matches `user` by name or, for a number, by uid.
pub fn find_user(passwd: &[u8], user: &str) -> Option<PasswdEntry> {
    let number = user.parse::<u64>().ok();
    lines(passwd).find_map(|fields| {
        let [name, _, uid, gid, ..] = fields.as_slice() else {
            return None;
        };
        let entry = PasswdEntry {
            name: (*name).to_string(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        };
        (entry.name == user || number == Some(entry.uid)).then_some(entry)
    })
}

/// The entry of `/etc/group` (its bytes) that matches `group` by name or, for a number, by gid.
pub fn find_group(group_file: &[u8], group: &str) -> Option<GroupEntry> {
    let number = group.parse::<u64>().ok();
    groups(group_file).find(|entry| entry.name == group || number == Some(entry.gid))
}

/// Every group of `/etc/group` that lists `user` as a member.
pub fn supplementary_gids(group_file: &[u8], user: &str) -> Vec<u64> {
    groups(group_file)
        .filter(|g| g.members.iter().any(|m| m == user))
        .map(|g| g.gid)
        .collect()
}

fn groups(group_file: &[u8]) -> impl Iterator<Item = GroupEntry> + '_ {
    lines(group_file).filter_map(|fields| {
        let [name, _, gid, rest @ ..] = fields.as_slice() else {
            return None;
        };
        Some(GroupEntry {
            name: (*name).to_string(),
            gid: gid.parse().ok()?,
            members: rest
                .first()
                .map(|m| {
                    m.split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

/// The colon-separated fields of each line that is not blank or a comment.
fn lines(bytes: &[u8]) -> impl Iterator<Item = Vec<&str>> {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').collect())
}

/// The part of a `USER[:GROUP]` the image's files lack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownName {
    User(String),
    Group(String),
}

/// The uid and gid a runtime gives `user` and `group` (a name or a number
/// each): a named user's passwd entry, its primary group unless a group is
/// given; a number stands for itself, with gid 0 when nothing says otherwise.
pub fn owner_ids(
    user: &str,
    group: Option<&str>,
    passwd: Option<&[u8]>,
    group_file: Option<&[u8]>,
) -> Result<(u64, u64), UnknownName> {
    let entry = passwd.and_then(|p| find_user(p, user));
    let (uid, primary) = match (entry, user.parse::<u64>()) {
        (Some(entry), _) => (entry.uid, entry.gid),
        (None, Ok(uid)) => (uid, 0),
        (None, Err(_)) => return Err(UnknownName::User(user.to_string())),
    };
    let gid = match group {
        None => primary,
        Some(group) => match (group_file.and_then(|f| find_group(f, group)), group.parse()) {
            (Some(entry), _) => entry.gid,
            (None, Ok(gid)) => gid,
            (None, Err(_)) => return Err(UnknownName::Group(group.to_string())),
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod owner_tests {
    use super::*;

    #[test]
    fn names_resolve_as_the_runtime_does() {
        let passwd = b"root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/usr/sbin/nologin\n";
        let group = b"root:x:0:\nusers:x:100:\nnogroup:x:65534:\n";
        let ids = |u, g| owner_ids(u, g, Some(&passwd[..]), Some(&group[..]));
        assert_eq!(ids("nobody", None), Ok((65534, 65534)));
        assert_eq!(ids("nobody", Some("users")), Ok((65534, 100)));
        assert_eq!(ids("1000", Some("users")), Ok((1000, 100)));
        assert_eq!(ids("1000", None), Ok((1000, 0)));
        assert_eq!(ids("jovyan", None), Err(UnknownName::User("jovyan".into())));
        assert_eq!(
            ids("nobody", Some("staff")),
            Err(UnknownName::Group("staff".into()))
        );
        assert_eq!(
            owner_ids("nobody", None, None, None),
            Err(UnknownName::User("nobody".into()))
        );
    }
}

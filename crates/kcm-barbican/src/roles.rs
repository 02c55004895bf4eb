//! Keystone's default roles as kcm roles.
//!
//! Keystone (since Rocky) ships three default roles that imply each other —
//! `admin` ⊃ `member` ⊃ `reader` — and Barbican's default policy grants by them.
//! A token lists every role the user holds in the project (implied ones included),
//! so the highest one decides. The door only names the role; what it allows is the
//! core's role table.

use kcm_core::model::Role;

/// The kcm role of a user holding the Keystone roles `names`: `admin` →
/// [`Role::TenantAdmin`], `member` → [`Role::KeyUser`], `reader` →
/// [`Role::Auditor`]; the highest wins. `None` when none of them is held (the
/// caller is refused). Names are compared without case, as Keystone's are unique
/// without case.
pub fn map_role_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Role> {
    names
        .into_iter()
        .filter_map(|name| {
            let rank = match name.to_ascii_lowercase().as_str() {
                "admin" => 3,
                "member" => 2,
                "reader" => 1,
                _ => return None,
            };
            Some(rank)
        })
        .max()
        .map(|rank| match rank {
            3 => Role::TenantAdmin,
            2 => Role::KeyUser,
            _ => Role::Auditor,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_known_role_wins() {
        assert_eq!(map_role_names(["reader"]), Some(Role::Auditor));
        assert_eq!(map_role_names(["member"]), Some(Role::KeyUser));
        assert_eq!(map_role_names(["admin"]), Some(Role::TenantAdmin));
        assert_eq!(
            map_role_names(["reader", "member", "admin"]),
            Some(Role::TenantAdmin)
        );
        assert_eq!(map_role_names(["member", "reader"]), Some(Role::KeyUser));
        assert_eq!(map_role_names(["Member", "other"]), Some(Role::KeyUser));
    }

    #[test]
    fn no_known_role_is_no_role() {
        assert_eq!(map_role_names([]), None);
        assert_eq!(map_role_names(["_member_", "creator", "observer"]), None);
    }
}

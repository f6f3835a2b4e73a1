//! DIGIT tenants: `pb.amritsar` is a city of the state-level ("root") tenant `pb`.

/// The state-level tenant: everything before the first `.` (the whole id when there is none).
pub fn root_tenant(tenant_id: &str) -> &str {
    tenant_id.split('.').next().unwrap_or(tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_the_part_before_the_first_dot() {
        assert_eq!(root_tenant("pb.amritsar"), "pb");
        assert_eq!(root_tenant("pb"), "pb");
        assert_eq!(root_tenant("in.pb.x"), "in");
    }
}

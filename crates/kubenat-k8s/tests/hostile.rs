//! Input built to hurt a parser: the import answers with a diagnostic, it does not hang,
//! exhaust memory or overflow the stack.

use kubenat_k8s::parse_str;

#[test]
fn syntax_errors_name_the_line() {
    let errors = parse_str(
        "s.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n",
    )
    .expect_err("bad");
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        ["s.yaml:4: not valid YAML or JSON: unclosed bracket '['"]
    );
}

#[test]
fn alias_bomb_is_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..20 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let errors = parse_str("bomb.yaml", &text).expect_err("refused");
    assert!(
        errors[0].message.contains("budget breached"),
        "{}",
        errors[0]
    );
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for depth in [1_000, 100_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let errors = parse_str("deep.yaml", &text).expect_err("too deep");
        assert_eq!(
            errors[0].to_string(),
            "deep.yaml:1: not valid YAML or JSON: recursion limit exceeded"
        );
        let text = format!("{}x", "- ".repeat(depth));
        let _ = parse_str("deep.yaml", &text);
    }
}

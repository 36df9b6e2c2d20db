use super::*;

fn template(source: &str) -> ChatTemplate {
    ChatTemplate::new(source, vec![("bos_token".into(), "<s>".into())], "test").unwrap()
}

fn chat() -> Vec<Message> {
    vec![
        Message::new("system", " Be brief. "),
        Message::new("user", "hi"),
        Message::new("assistant", "hello"),
    ]
}

fn render(source: &str, messages: &[Message]) -> String {
    template(source).render(messages, false).unwrap()
}

fn error(source: &str, messages: &[Message]) -> String {
    match ChatTemplate::new(source, Vec::new(), "cfg.json") {
        Err(e) => e.to_string(),
        Ok(t) => t.render(messages, false).unwrap_err().to_string(),
    }
}

#[test]
fn blocks_are_trimmed_and_the_final_newline_dropped() {
    // trim_blocks: the newline after a block tag goes; lstrip_blocks: the
    // spaces before it go; keep_trailing_newline=False: one final \n goes.
    let source =
        "{{ bos_token }}\n  {% for m in messages %}\n[{{ m.role }}]\n  {% endfor %}\nend\n";
    assert_eq!(
        render(source, &chat()),
        "<s>\n[system]\n[user]\n[assistant]\nend"
    );
}

#[test]
fn values_print_as_python_prints_them() {
    let source = "{{ add_generation_prompt }} {{ tools }} {{ [1, 'a', none] }} {{ 1.5e20 }} {{ undefined_name }}|{{ 3 | string }}";
    assert_eq!(
        render(source, &chat()),
        "False None [1, 'a', None] 1.5e+20 |3"
    );
}

#[test]
fn python_string_and_dict_methods() {
    let source = "{% for m in messages %}{{ m.content.strip() }}/{{ m.role.startswith('sys') }}/{% for k, v in m.items() %}{{ k }}{% endfor %};{% endfor %}{{ '\u{1c}x\u{1f}' | trim }}";
    assert_eq!(
        render(source, &chat()),
        "Be brief./True/rolecontent;hi/False/rolecontent;hello/False/rolecontent;x"
    );
}

#[test]
fn tojson_is_json_dumps() {
    let source = "{{ messages[1] | tojson }} {{ {'b': [1, 2.0], 'a': 'é\"'} | tojson(sort_keys=true) }} {{ [] | tojson(indent=2) }} {{ {'k': [1]} | tojson(indent=2) }}";
    assert_eq!(
        render(source, &chat()),
        "{\"role\": \"user\", \"content\": \"hi\"} {\"a\": \"é\\\"\", \"b\": [1, 2.0]} [] {\n  \"k\": [\n    1\n  ]\n}"
    );
}

#[test]
fn raise_exception_names_the_template_message() {
    let source = "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}";
    let message = error(source, &chat());
    assert!(
        message
            .contains("cfg.json: the chat template raised an exception: System role not supported"),
        "{message}"
    );
}

#[test]
fn broken_templates_are_config_errors() {
    assert!(error("{% for m in messages %}", &chat()).contains("does not compile"));
    let message = error("{{ messages[0].content.no_such_method() }}", &chat());
    assert!(message.contains("failed on this conversation"), "{message}");
    let message = error("{{ messages }}", &[]);
    assert!(message.contains("empty conversation"), "{message}");
}

#[test]
fn generation_tags_render_their_body() {
    let source =
        "{% for m in messages %}{%- generation -%}\n {{ m.role }}{% endgeneration %}{% endfor %}";
    assert_eq!(render(source, &chat()), "systemuserassistant");
    assert_eq!(rewrite_generation_tags("{%+ generation%}"), "{%+ if true%}");
    assert_eq!(
        rewrite_generation_tags("{% generations %}"),
        "{% generations %}"
    );
}

#[test]
fn loop_controls_and_namespaces_work() {
    let source = "{% set ns = namespace(n=0) %}{% for m in messages %}{% if m.role == 'user' %}{% break %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}";
    assert_eq!(render(source, &chat()), "1");
}

#[test]
fn config_tokens_and_named_templates() {
    let config = serde_json::json!({
        "bos_token": {"content": "<bos>", "lstrip": false},
        "eos_token": "<eos>",
        "pad_token": null,
        "extra_special_tokens": {"image_token": "<img>"},
        "chat_template": [
            {"name": "tool_use", "template": "tools"},
            {"name": "default", "template": "{{ bos_token }}{{ eos_token }}{{ pad_token }}{{ image_token }}"}
        ]
    });
    let t = ChatTemplate::from_config(&config, "cfg").unwrap();
    assert_eq!(t.render(&chat(), false).unwrap(), "<bos><eos><img>");
    let names: Vec<&str> = t.special_tokens().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["bos_token", "eos_token", "image_token"]);
}

#[test]
fn configs_without_a_usable_template_are_refused() {
    let cases = [
        (serde_json::json!({"eos_token": "x"}), "no chat_template"),
        (
            serde_json::json!({"chat_template": [{"name": "tool_use", "template": "t"}]}),
            "no `default` (names: tool_use)",
        ),
        (serde_json::json!({"chat_template": 3}), "got a number"),
        (
            serde_json::json!({"chat_template": "x", "bos_token": {"lstrip": true}}),
            "bos_token: an AddedToken object needs",
        ),
        (serde_json::json!([1]), "expected a JSON object"),
    ];
    for (config, want) in cases {
        let message = ChatTemplate::from_config(&config, "cfg")
            .err()
            .unwrap()
            .to_string();
        assert!(message.contains(want), "{message}");
    }
}

#[test]
fn strftime_now_formats_the_local_time() {
    let year = render("{{ strftime_now('%Y') }}", &chat());
    assert_eq!(year.len(), 4);
    assert!(year.starts_with('2'), "{year}");
    let micros = render("{{ strftime_now('%f|%%f%z%Z') }}", &chat());
    assert_eq!(micros.len(), 9, "{micros}");
    assert!(micros.ends_with("|%f"), "{micros}");
}

use super::*;

fn back<T: ToTerm + FromTerm>(v: &T) -> T {
    T::from_term(v.to_term()).unwrap()
}

#[test]
fn std_types_follow_elixir_conventions() {
    assert_eq!("hi".to_term(), Term::Binary(b"hi".to_vec()));
    assert_eq!(Some(3u8).to_term(), Term::Int(3));
    assert_eq!(None::<u8>.to_term(), Term::atom("nil"));
    assert_eq!(().to_term(), Term::atom("ok"));
    assert_eq!(
        Ok::<u8, String>(1).to_term(),
        Term::tuple([Term::atom("ok"), Term::Int(1)])
    );
    assert_eq!(
        back(&(1u8, "x".to_string(), true, 2.5f64)),
        (1, "x".to_string(), true, 2.5)
    );
    assert_eq!(back(&vec![Some(1i64), None]), vec![Some(1), None]);
    let m: HashMap<String, Vec<u32>> = [("a".to_string(), vec![1, 2])].into_iter().collect();
    assert_eq!(back(&m), m);
    assert_eq!(back(&u128::MAX), u128::MAX);
    assert_eq!(back(&i128::MIN), i128::MIN);
    assert_eq!(back(&u64::MAX), u64::MAX);
    assert_eq!(back(&Err::<(), String>("bad".into())), Err("bad".to_string()));
}

#[test]
fn misfits_are_typed_errors() {
    let e = u8::from_term(Term::Int(256)).unwrap_err();
    assert_eq!(e.expected, "an integer in the range of u8");
    assert_eq!(e.got, "256");
    assert!(String::from_term(Term::atom("x")).is_err());
    assert!(String::from_term(Term::Binary(vec![0xff])).is_err());
    assert!(<(u8, u8)>::from_term(Term::tuple([Term::Int(1)])).is_err());
    assert!(u64::from_term(Term::Int(-1)).is_err());
    assert!(bool::from_term(Term::atom("nil")).is_err());
}

#[derive(Debug, PartialEq)]
struct Point {
    x: i64,
    y: i64,
}
crate::term_struct!(Point { x, y });

#[test]
fn structs_become_atom_keyed_maps() {
    let t = Point { x: 1, y: -2 }.to_term();
    assert_eq!(t.map_get(&Term::atom("y")), Some(&Term::Int(-2)));
    assert_eq!(back(&Point { x: 1, y: -2 }), Point { x: 1, y: -2 });
    let missing = Term::Map(vec![(Term::atom("x"), Term::Int(1))]);
    assert_eq!(Point::from_term(missing).unwrap_err().expected, "a map with the key :y");
}

#[derive(Debug, PartialEq)]
enum Shape {
    Circle(f64),
    Rect(i64, i64),
    Labelled(String, Box<Shape>),
    At { x: i64, y: i64 },
    Empty,
}
crate::term_enum!(Shape { Circle(r) as "circle", Rect(w, h) as "rect", Labelled(label, inner) as "labelled", At { x, y } as "at", Empty as "empty" });

#[test]
fn enums_become_atoms_and_tagged_tuples() {
    let s = Shape::Labelled("box".into(), Box::new(Shape::Rect(2, 3)));
    assert_eq!(s.to_term().to_string(), r#"{:labelled, "box", {:rect, 2, 3}}"#);
    assert_eq!(back(&s), s);
    assert_eq!(Shape::Empty.to_term(), Term::atom("empty"));
    assert_eq!(back(&Shape::Circle(1.5)), Shape::Circle(1.5));
    // wrong arity, wrong element, unknown tag: typed errors
    let at = Shape::At { x: 1, y: -2 };
    assert_eq!(at.to_term().to_string(), "{:at, %{:x => 1, :y => -2}}");
    assert_eq!(back(&at), at);
    let e = Shape::from_term(Term::tuple([Term::atom("at"), Term::Map(vec![])])).unwrap_err();
    assert_eq!(e.expected, "a map with the key :x in {:at, %{...}}");
    let e = Shape::from_term(Term::tuple([Term::atom("rect"), Term::Int(1)])).unwrap_err();
    assert_eq!(e.expected, "one of :circle, :rect, :labelled, :at, :empty");
    let e = Shape::from_term(Term::tuple([Term::atom("circle"), Term::atom("x")])).unwrap_err();
    assert_eq!(e.expected, "a float in {:circle, ...}");
    assert!(Shape::from_term(Term::atom("circle")).is_err());
    assert!(Shape::from_term(Term::Int(1)).is_err());
}

/// The parsed form of a chat template: statements and expressions of the Jinja subset Tether
/// renders. Every node keeps the scalar offset of its first token, for errors at render time.
indirect enum TemplateExpression: Sendable {
    case literal(RuntimeValue)
    case name(String, at: Int)
    case list([TemplateExpression])
    case tuple([TemplateExpression])
    case dict([(key: TemplateExpression, value: TemplateExpression)], at: Int)
    case attribute(TemplateExpression, String, at: Int)
    case item(TemplateExpression, TemplateExpression, at: Int)
    /// Only as the argument of `item`: `seq[start:stop:step]`.
    case slice(start: TemplateExpression?, stop: TemplateExpression?, step: TemplateExpression?)
    case call(TemplateExpression, TemplateArguments, at: Int)
    case filter(TemplateExpression, String, TemplateArguments, at: Int)
    case test(TemplateExpression, String, TemplateArguments, negated: Bool, at: Int)
    case not(TemplateExpression)
    case negate(TemplateExpression, at: Int)
    case and(TemplateExpression, TemplateExpression)
    case or(TemplateExpression, TemplateExpression)
    case binary(BinaryOperator, TemplateExpression, TemplateExpression, at: Int)
    case concat([TemplateExpression])
    case compare(TemplateExpression, [(op: CompareOperator, rhs: TemplateExpression)], at: Int)
    case conditional(then: TemplateExpression, condition: TemplateExpression, otherwise: TemplateExpression?)
}

struct TemplateArguments: Sendable {
    var positional: [TemplateExpression] = []
    var keyword: [(name: String, value: TemplateExpression)] = []
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%", power = "**"
}

enum CompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case contains = "in", notContains = "not in"
}

/// What `{% for %}` and `{% set %}` assign to.
indirect enum AssignTarget: Sendable {
    case name(String)
    case tuple([AssignTarget])
    /// `ns.attr`, assigning into a `namespace()` object (the only way to carry state out of a loop).
    case namespaceAttribute(String, String)
}

struct ForLoop: Sendable {
    var target: AssignTarget
    var iterable: TemplateExpression
    var filter: TemplateExpression?
    var body: [TemplateStatement]
    var otherwise: [TemplateStatement]
    var at: Int
}

struct MacroDefinition: Sendable {
    var name: String
    var parameters: [(name: String, defaultValue: TemplateExpression?)]
    var body: [TemplateStatement]
    var at: Int
}

indirect enum TemplateStatement: Sendable {
    case text(String)
    case output(TemplateExpression)
    case conditional([(condition: TemplateExpression, body: [TemplateStatement])], otherwise: [TemplateStatement])
    case forLoop(ForLoop)
    case assign(AssignTarget, TemplateExpression, at: Int)
    case assignBlock(String, [TemplateStatement])
    case macro(MacroDefinition)
    case breakLoop
    case continueLoop
}

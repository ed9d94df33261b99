"""The evaluator's runtime: the event access protocol (documents, lazy
values), compiled rules and the ruleset with its per-type index, and the
variables `set` actions write. The compiler (codegen/) produces the rules'
closures; this package is what runs them."""

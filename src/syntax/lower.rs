//! pest pairs to AST. The only file that sees pest: grammar failures become
//! [`SyntaxError`]s in plain words, and literal details the grammar leaves
//! open (escapes, number ranges, format specs) are checked here.

use std::sync::LazyLock;

use pest::Parser;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::*;
use super::grammar::{ConcshParser, Rule};
use super::{Span, SyntaxError};

/// Precedence, loosest first, as in Python: `not a == b` is `not (a == b)`,
/// `-x ** 2` is `-(x ** 2)`.
static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::op_or, Assoc::Left))
        .op(Op::infix(Rule::op_and, Assoc::Left))
        .op(Op::prefix(Rule::op_not))
        .op(Op::infix(Rule::op_eq, Assoc::Left)
            | Op::infix(Rule::op_ne, Assoc::Left)
            | Op::infix(Rule::op_lt, Assoc::Left)
            | Op::infix(Rule::op_le, Assoc::Left)
            | Op::infix(Rule::op_gt, Assoc::Left)
            | Op::infix(Rule::op_ge, Assoc::Left)
            | Op::infix(Rule::op_in, Assoc::Left)
            | Op::infix(Rule::op_not_in, Assoc::Left))
        .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
        .op(Op::infix(Rule::op_mul, Assoc::Left)
            | Op::infix(Rule::op_div, Assoc::Left)
            | Op::infix(Rule::op_floordiv, Assoc::Left)
            | Op::infix(Rule::op_mod, Assoc::Left))
        .op(Op::prefix(Rule::op_neg))
        .op(Op::infix(Rule::op_pow, Assoc::Right))
        .op(Op::postfix(Rule::call) | Op::postfix(Rule::index) | Op::postfix(Rule::field))
});

/// Parses and lowers a whole script.
pub fn program(source: &str) -> Result<Program, Vec<SyntaxError>> {
    pest::set_error_detail(true);
    let mut pairs = ConcshParser::parse(Rule::program, source).map_err(|e| vec![friendly(source, e)])?;
    let mut lower = Lower { errors: Vec::new() };
    let stmts = match pairs.next() {
        Some(program) => lower.stmts(program.into_inner()),
        None => Vec::new(),
    };
    if lower.errors.is_empty() { Ok(Program { stmts }) } else { Err(lower.errors) }
}

struct Lower {
    errors: Vec<SyntaxError>,
}

/// The meaningful children of a pair: keyword tokens are dropped.
fn children(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_keyword(p.as_rule()))
}

fn is_keyword(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::kw_let
            | Rule::kw_import
            | Rule::kw_as
            | Rule::kw_fn
            | Rule::kw_if
            | Rule::kw_else
            | Rule::kw_while
            | Rule::kw_for
            | Rule::kw_in
            | Rule::kw_return
            | Rule::kw_break
            | Rule::kw_continue
            | Rule::kw_try
            | Rule::kw_catch
            | Rule::kw_finally
            | Rule::kw_throw
            | Rule::kw_put
            | Rule::kw_get
            | Rule::kw_lock
            | Rule::kw_acquire
            | Rule::kw_release
            | Rule::kw_close
            | Rule::kw_terminate
            | Rule::kw_set
            | Rule::kw_clear
            | Rule::kw_notify
            | Rule::kw_wait
            | Rule::kw_join
            | Rule::kw_thread
            | Rule::w_into
            | Rule::w_timeout
            | Rule::w_as
            | Rule::w_to
            | Rule::kw_submit
            | Rule::kw_pool
    )
}

fn span(pair: &Pair<'_, Rule>) -> Span {
    pair.as_span().into()
}

fn ident(pair: Pair<'_, Rule>) -> Ident {
    Ident { name: pair.as_str().to_string(), span: span(&pair) }
}

impl Lower {
    fn stmts(&mut self, pairs: Pairs<'_, Rule>) -> Block {
        pairs.filter(|p| p.as_rule() != Rule::EOI).map(|p| self.stmt(p)).collect()
    }

    fn block(&mut self, pair: Pair<'_, Rule>) -> Block {
        self.stmts(pair.into_inner())
    }

    fn stmt(&mut self, pair: Pair<'_, Rule>) -> Stmt {
        let span = span(&pair);
        let rule = pair.as_rule();
        let mut parts = children(pair);
        let mut next = || parts.next().expect("grammar guarantees the part");
        let kind = match rule {
            Rule::import_stmt => {
                let path = next();
                let at = self::span(&path);
                let path = match self.string(path) {
                    ExprKind::Str(text) => text,
                    _ => {
                        self.errors.push(
                            SyntaxError::new(at, "an import path is plain text", "not plain text")
                                .with_help("write the path out: `import \"lib.conc\"`"),
                        );
                        String::new()
                    }
                };
                StmtKind::Import { path, at, alias: parts.next().map(ident) }
            }
            Rule::let_stmt => {
                let pattern = self.pattern(next());
                StmtKind::Let(pattern, self.expr(next()))
            }
            Rule::fn_decl => {
                let name = ident(next());
                StmtKind::Fn(self.function(Some(name), next(), next(), span))
            }
            Rule::if_stmt => {
                let cond = self.expr(next());
                let then = self.block(next());
                let mut branches = vec![(cond, then)];
                let mut otherwise = None;
                if let Some(rest) = parts.next() {
                    if rest.as_rule() == Rule::if_stmt {
                        match self.stmt(rest).kind {
                            StmtKind::If { branches: more, otherwise: last } => {
                                branches.extend(more);
                                otherwise = last;
                            }
                            _ => unreachable!("an if_stmt lowers to If"),
                        }
                    } else {
                        otherwise = Some(self.block(rest));
                    }
                }
                StmtKind::If { branches, otherwise }
            }
            Rule::while_stmt => {
                let cond = self.expr(next());
                StmtKind::While(cond, self.block(next()))
            }
            Rule::for_stmt => {
                let pattern = self.pattern(next());
                let iter = self.expr(next());
                StmtKind::For(pattern, iter, self.block(next()))
            }
            Rule::return_stmt => StmtKind::Return(parts.next().map(|e| self.expr(e))),
            Rule::break_stmt => StmtKind::Break,
            Rule::continue_stmt => StmtKind::Continue,
            Rule::try_stmt => {
                let body = self.block(next());
                let mut catch = None;
                let mut finally = None;
                for clause in parts {
                    match clause.as_rule() {
                        Rule::catch_clause => {
                            let mut inner = children(clause).peekable();
                            let catches = match inner.peek().map(|p| (p.as_rule(), p.as_str())) {
                                Some((Rule::cancel_kind, kind)) => {
                                    let kind =
                                        if kind == "Interrupted" { Catches::Interrupted } else { Catches::Terminated };
                                    inner.next();
                                    kind
                                }
                                _ => Catches::Errors,
                            };
                            let name = match inner.peek().map(|p| p.as_rule()) {
                                Some(Rule::ident) => inner.next().map(ident),
                                _ => None,
                            };
                            let block = match inner.next() {
                                Some(b) => self.block(b),
                                None => Vec::new(),
                            };
                            catch = Some(Catch { catches, name, block });
                        }
                        _ => {
                            finally = children(clause).next().map(|b| self.block(b));
                        }
                    }
                }
                StmtKind::Try { body, catch, finally }
            }
            Rule::throw_stmt => StmtKind::Throw(self.expr(next())),
            Rule::assign_stmt => {
                let target = self.postfix_expr(next());
                let op = match next().as_str() {
                    "+=" => Some(BinOp::Add),
                    "-=" => Some(BinOp::Sub),
                    "*=" => Some(BinOp::Mul),
                    "/=" => Some(BinOp::Div),
                    "//=" => Some(BinOp::FloorDiv),
                    "%=" => Some(BinOp::Mod),
                    _ => None,
                };
                let value = self.expr(next());
                if !matches!(target.kind, ExprKind::Name(_) | ExprKind::Index(..) | ExprKind::Field(..)) {
                    self.errors.push(
                        SyntaxError::new(target.span, "cannot assign to this", "not a variable, item or field")
                            .with_help("the left of `=` must be a name, `xs[i]` or `m.key`; use `==` to compare"),
                    );
                }
                StmtKind::Assign { target, op, value }
            }
            Rule::expr_stmt => StmtKind::Expr(self.expr(next())),
            Rule::put_stmt => {
                let value = self.expr(next());
                let queue = self.expr(next());
                StmtKind::Put(value, queue, self.limit(parts.next()))
            }
            Rule::lock_stmt => {
                let target = self.expr(next());
                StmtKind::LockBlock(target, self.block(next()))
            }
            Rule::release_stmt => StmtKind::Release(self.expr(next())),
            Rule::close_stmt => StmtKind::Close(self.expr(next())),
            Rule::terminate_stmt => StmtKind::Terminate(self.expr(next())),
            Rule::set_stmt => StmtKind::Set(self.expr(next())),
            Rule::clear_stmt => StmtKind::Clear(self.expr(next())),
            Rule::notify_stmt => {
                let first = next();
                match first.as_rule() {
                    Rule::w_all => StmtKind::Notify(self.expr(next()), true),
                    _ => StmtKind::Notify(self.expr(first), false),
                }
            }
            other => unreachable!("not a statement rule: {other:?}"),
        };
        Stmt { kind, span }
    }

    fn pattern(&mut self, pair: Pair<'_, Rule>) -> Pattern {
        match pair.as_rule() {
            Rule::ident => Pattern::Name(ident(pair)),
            _ => {
                let span = span(&pair);
                Pattern::List(pair.into_inner().map(|p| self.pattern(p)).collect(), span)
            }
        }
    }

    fn function(&mut self, name: Option<Ident>, params: Pair<'_, Rule>, body: Pair<'_, Rule>, span: Span) -> FnDef {
        let params = params
            .into_inner()
            .map(|param| {
                let mut inner = param.into_inner();
                let name = ident(inner.next().expect("a param has a name"));
                Param { name, default: inner.next().map(|d| self.expr(d)) }
            })
            .collect();
        let body = match body.as_rule() {
            Rule::block => FnBody::Block(self.block(body)),
            _ => {
                let expr = body.into_inner().next().expect("=> has an expression");
                FnBody::Arrow(Box::new(self.expr(expr)))
            }
        };
        FnDef { name, params, body, span }
    }

    /// `expr` and `expr_nl`: fold operands and operators by precedence.
    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let this = std::cell::RefCell::new(self);
        PRATT
            .map_primary(|p| this.borrow_mut().primary(p))
            .map_prefix(|op, rhs| {
                let span = span(&op).to(rhs.span);
                // `-7` written as a number is a literal (so is
                // `-9223372036854775808`); `-(x)` is evaluated at run time.
                let source = op.get_input();
                let gap = source.get(op.as_span().end()..rhs.span.start as usize).unwrap_or("x");
                let literal = gap.trim().is_empty()
                    && source[rhs.span.start as usize..].starts_with(|c: char| c.is_ascii_digit());
                let kind = match (op.as_rule(), rhs.kind) {
                    (Rule::op_neg, ExprKind::Int(n)) if literal => ExprKind::Int(n.wrapping_neg()),
                    (Rule::op_neg, ExprKind::Float(f)) if literal => ExprKind::Float(-f),
                    (Rule::op_neg, kind) => ExprKind::Unary(UnOp::Neg, Box::new(Expr { kind, span: rhs.span })),
                    (_, kind) => ExprKind::Unary(UnOp::Not, Box::new(Expr { kind, span: rhs.span })),
                };
                Expr { kind, span }
            })
            .map_postfix(|lhs, op| this.borrow_mut().postfix(lhs, op))
            .map_infix(|lhs, op, rhs| {
                let op = match op.as_rule() {
                    Rule::op_or => BinOp::Or,
                    Rule::op_and => BinOp::And,
                    Rule::op_eq => BinOp::Eq,
                    Rule::op_ne => BinOp::Ne,
                    Rule::op_lt => BinOp::Lt,
                    Rule::op_le => BinOp::Le,
                    Rule::op_gt => BinOp::Gt,
                    Rule::op_ge => BinOp::Ge,
                    Rule::op_in => BinOp::In,
                    Rule::op_not_in => BinOp::NotIn,
                    Rule::op_add => BinOp::Add,
                    Rule::op_sub => BinOp::Sub,
                    Rule::op_mul => BinOp::Mul,
                    Rule::op_div => BinOp::Div,
                    Rule::op_floordiv => BinOp::FloorDiv,
                    Rule::op_mod => BinOp::Mod,
                    _ => BinOp::Pow,
                };
                let span = lhs.span.to(rhs.span);
                Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span }
            })
            .parse(pair.into_inner())
    }

    /// The target of an assignment: a primary and its postfixes.
    fn postfix_expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let mut inner = pair.into_inner();
        let mut expr = self.primary(inner.next().expect("a primary"));
        for op in inner {
            expr = self.postfix(expr, op);
        }
        expr
    }

    fn postfix(&mut self, lhs: Expr, op: Pair<'_, Rule>) -> Expr {
        let span = lhs.span.to(span(&op));
        let kind = match op.as_rule() {
            Rule::call => ExprKind::Call(Box::new(lhs), self.args(op)),
            Rule::index => {
                let inner = op.into_inner().next().expect("an index");
                if inner.as_rule() != Rule::slice {
                    return Expr { kind: ExprKind::Index(Box::new(lhs), Box::new(self.expr(inner))), span };
                }
                let mut parts = [None, None, None];
                for part in inner.into_inner() {
                    let at = match part.as_rule() {
                        Rule::slice_start => 0,
                        Rule::slice_stop => 1,
                        _ => 2,
                    };
                    parts[at] = part.into_inner().next().map(|e| self.expr(e));
                }
                ExprKind::Slice(Box::new(lhs), Box::new(parts))
            }
            _ => {
                let name = ident(op.into_inner().next().expect("a field name"));
                ExprKind::Field(Box::new(lhs), name)
            }
        };
        Expr { kind, span }
    }

    fn args(&mut self, call: Pair<'_, Rule>) -> Vec<Arg> {
        let mut args: Vec<Arg> = Vec::new();
        // The first named argument, kept (not searched for at each
        // positional one: a generated call of many arguments stays linear).
        let mut first_named: Option<String> = None;
        for arg in call.into_inner() {
            if arg.as_rule() == Rule::named_arg {
                let mut inner = arg.into_inner();
                let name = ident(inner.next().expect("a name"));
                let value = self.expr(inner.next().expect("a value"));
                first_named.get_or_insert_with(|| name.name.clone());
                args.push(Arg { name: Some(name), value });
            } else {
                let value = self.expr(arg);
                if let Some(named) = &first_named {
                    self.errors.push(
                        SyntaxError::new(value.span, "positional argument after a named one", "positional")
                            .with_help(format!("put it before `{named}:`")),
                    );
                }
                args.push(Arg { name: None, value });
            }
        }
        args
    }

    /// `[e for p in xs if c]` and `{k: v for ...}`, as Python runs them: a
    /// function of their own, called at once (so the loop's names stay
    /// inside), whose body is the loop that fills the result:
    /// `(fn() { let r = []; for p in xs { if c { r.push(e) } } return r })()`.
    fn comprehension(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = span(&pair);
        let is_map = pair.as_rule() == Rule::map_comp;
        let mut inner = pair.into_inner();
        let Some(first) = inner.next() else { return Expr { kind: ExprKind::Nil, span } };
        let expr = |kind| Expr { kind, span };
        let stmt = |kind| Stmt { kind, span };
        // A name no script can write: it cannot clash with the script's own.
        let result = || expr(ExprKind::Name("comprehension result".into()));
        let fill = if is_map {
            let mut kv = first.into_inner();
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else { return expr(ExprKind::Nil) };
            let target = expr(ExprKind::Index(Box::new(result()), Box::new(self.expr(k))));
            stmt(StmtKind::Assign { target, op: None, value: self.expr(v) })
        } else {
            let element = self.expr(first);
            let push = Ident { name: "push".into(), span };
            let method = expr(ExprKind::Field(Box::new(result()), push));
            stmt(StmtKind::Expr(expr(ExprKind::Call(Box::new(method), vec![Arg { name: None, value: element }]))))
        };
        // The clauses, innermost first, each wrapping the body made so far.
        let clauses: Vec<Pair<'_, Rule>> = inner.collect();
        let mut body = vec![fill];
        for clause in clauses.into_iter().rev() {
            // The keywords are pairs of their own: left out.
            let mut parts = clause.into_inner().filter(|p| !matches!(p.as_rule(), Rule::kw_for | Rule::kw_in));
            let (Some(pattern), Some(items)) = (parts.next(), parts.next()) else { continue };
            let pattern = self.pattern(pattern);
            let items = self.expr(items);
            let conditions = parts.filter_map(|c| c.into_inner().find(|p| p.as_rule() == Rule::expr_nl));
            let filters: Vec<Expr> = conditions.map(|c| self.expr(c)).collect();
            for filter in filters.into_iter().rev() {
                body = vec![stmt(StmtKind::If { branches: vec![(filter, body)], otherwise: None })];
            }
            body = vec![stmt(StmtKind::For(pattern, items, body))];
        }
        let empty = if is_map { ExprKind::Map(Vec::new()) } else { ExprKind::List(Vec::new()) };
        let name = Ident { name: "comprehension result".into(), span };
        let mut stmts = vec![stmt(StmtKind::Let(Pattern::Name(name), expr(empty)))];
        stmts.extend(body);
        stmts.push(stmt(StmtKind::Return(Some(result()))));
        let name = Some(Ident { name: "<comprehension>".into(), span });
        let def = FnDef { name, params: Vec::new(), body: FnBody::Block(stmts), span };
        expr(ExprKind::Call(Box::new(expr(ExprKind::Lambda(Box::new(def)))), Vec::new()))
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = span(&pair);
        let kind = match pair.as_rule() {
            Rule::int => self.int(&pair),
            Rule::float => match pair.as_str().replace('_', "").parse::<f64>() {
                Ok(f) if f.is_finite() => ExprKind::Float(f),
                _ => {
                    self.errors.push(SyntaxError::new(span, "number too large", "not a finite float"));
                    ExprKind::Nil
                }
            },
            Rule::string => self.string(pair),
            Rule::kw_true => ExprKind::Bool(true),
            Rule::kw_false => ExprKind::Bool(false),
            Rule::kw_nil => ExprKind::Nil,
            Rule::ident => ExprKind::Name(pair.as_str().to_string()),
            Rule::lambda => {
                let mut inner = children(pair);
                let params = inner.next().expect("params");
                let body = inner.next().expect("body");
                ExprKind::Lambda(Box::new(self.function(None, params, body, span)))
            }
            Rule::reserved_call => ExprKind::Name(pair.as_str().to_string()),
            Rule::task_expr => self.task(pair, span),
            Rule::pool_map => {
                let (mut size, mut threads, mut unordered, mut func) = (None, false, false, None);
                let mut items = None;
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::pool_size => {
                            let inner = part.into_inner().next().expect("a size");
                            size = Some(Box::new(self.expr(inner)));
                        }
                        Rule::w_threads => threads = true,
                        Rule::w_unordered => unordered = true,
                        Rule::unary => func = Some(Box::new(self.expr(part))),
                        Rule::expr => items = Some(Box::new(self.expr(part))),
                        _ => {}
                    }
                }
                let func = func.expect("the grammar requires a function");
                let items = items.expect("the grammar requires items");
                ExprKind::PoolMap { size, threads, unordered, func, items }
            }
            Rule::submit_expr => {
                let mut inner = children(pair);
                let call = self.postfix_expr(inner.next().expect("a call"));
                let pool = Box::new(self.expr(inner.find(|p| p.as_rule() == Rule::unary).expect("a pool")));
                match call.kind {
                    ExprKind::Call(callee, args) => ExprKind::Submit { callee, args, pool },
                    _ => {
                        self.errors.push(
                            SyntaxError::new(call.span, "submit takes a call", "not a call")
                                .with_help("write `submit f(x) to pl`"),
                        );
                        ExprKind::Nil
                    }
                }
            }
            Rule::join_expr | Rule::wait_expr => {
                let rule = pair.as_rule();
                let mut inner = children(pair);
                let target = Box::new(self.postfix_expr(inner.next().expect("a target")));
                let timeout = inner.next().map(|t| Box::new(self.timeout(t)));
                match rule {
                    Rule::join_expr => ExprKind::Join(target, timeout),
                    _ => ExprKind::Wait(target, timeout),
                }
            }
            Rule::get_expr | Rule::acquire_expr => {
                let rule = pair.as_rule();
                let mut inner = children(pair);
                let target = Box::new(self.postfix_expr(inner.next().expect("a target")));
                let limit = self.limit(inner.next());
                match rule {
                    Rule::get_expr => ExprKind::Get(target, limit),
                    _ => ExprKind::Acquire(target, limit),
                }
            }
            Rule::list_comp | Rule::map_comp => return self.comprehension(pair),
            Rule::list => ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect()),
            Rule::map => ExprKind::Map(
                pair.into_inner()
                    .map(|entry| {
                        let mut kv = entry.into_inner();
                        let k = self.expr(kv.next().expect("a key"));
                        let v = self.expr(kv.next().expect("a value"));
                        (k, v)
                    })
                    .collect(),
            ),
            // A parenthesised expression.
            _ => return self.expr(pair),
        };
        Expr { kind, span }
    }

    /// `thread|spawn [daemon] (call | block) [as name]`.
    fn task(&mut self, pair: Pair<'_, Rule>, span: Span) -> ExprKind {
        let mut daemon = false;
        let mut process = false;
        let mut target = None;
        let mut name = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::w_daemon => daemon = true,
                Rule::kw_spawn => process = true,
                Rule::kw_thread => {}
                Rule::w_as => {}
                Rule::block => {
                    let body = FnBody::Block(self.block(part));
                    let def = FnDef { name: None, params: Vec::new(), body, span };
                    target = Some(TaskTarget::Block(Box::new(def)));
                }
                Rule::postfix_expr if target.is_none() => {
                    let call = self.postfix_expr(part);
                    target = Some(match call.kind {
                        ExprKind::Call(callee, args) => TaskTarget::Call(callee, args),
                        _ => {
                            self.errors.push(
                                SyntaxError::new(call.span, "a task runs a call or a block", "not a call")
                                    .with_help("write `thread f(x)` or `thread { ... }`"),
                            );
                            TaskTarget::Block(Box::new(FnDef {
                                name: None,
                                params: Vec::new(),
                                body: FnBody::Block(Vec::new()),
                                span,
                            }))
                        }
                    });
                }
                _ => name = Some(Box::new(self.expr(part))),
            }
        }
        let target = target.expect("the grammar requires a target");
        ExprKind::Task { process, daemon, target, name }
    }

    /// `timeout s` or `nowait`, if present.
    fn limit(&mut self, pair: Option<Pair<'_, Rule>>) -> Limit {
        match pair {
            None => Limit::Forever,
            Some(p) if p.as_rule() == Rule::w_nowait => Limit::NoWait,
            Some(p) => Limit::Timeout(Box::new(self.timeout(p))),
        }
    }

    fn timeout(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let seconds = children(pair).find(|p| p.as_rule() == Rule::unary).expect("timeout has seconds");
        self.expr(seconds)
    }

    fn int(&mut self, pair: &Pair<'_, Rule>) -> ExprKind {
        let digits = pair.as_str().replace('_', "");
        // Parsed wide so that `-9223372036854775808` (negated later) fits.
        // 2^63 fits only as `-9223372036854775808`: a minus right before it.
        let source = pair.get_input();
        let negated = source[..pair.as_span().start()].trim_end().ends_with('-');
        match digits.parse::<i128>() {
            Ok(n) if n <= i64::MAX as i128 => ExprKind::Int(n as i64),
            Ok(n) if n == i64::MAX as i128 + 1 && negated => ExprKind::Int(i64::MIN),
            _ => {
                self.errors.push(
                    SyntaxError::new(span(pair), "integer literal too large", "does not fit in 64 bits")
                        .with_help("integers range from -9223372036854775808 to 9223372036854775807"),
                );
                ExprKind::Nil
            }
        }
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> ExprKind {
        let mut parts: Vec<InterpPart> = Vec::new();
        let mut text = String::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::str_text => text.push_str(part.as_str()),
                Rule::str_braces => text.push(part.as_str().chars().next().unwrap_or('{')),
                Rule::str_escape => match unescape(part.as_str()) {
                    Some(c) => text.push(c),
                    None => self.errors.push(
                        SyntaxError::new(span(&part), format!("unknown escape `{}`", part.as_str()), "not an escape")
                            .with_help(r#"the escapes are \n \t \r \0 \\ \" \{ \} and \u{hex}"#),
                    ),
                },
                Rule::str_rbrace => self.errors.push(
                    SyntaxError::new(span(&part), "single `}` in a string", "unmatched")
                        .with_help("write `}}` for a literal brace"),
                ),
                _ => {
                    if !text.is_empty() {
                        parts.push(InterpPart::Text(std::mem::take(&mut text)));
                    }
                    let mut inner = part.into_inner();
                    let expr = self.expr(inner.next().expect("an expression"));
                    let spec = inner.next().map(|s| {
                        let spec_span = span(&s);
                        parse_format_spec(&s.as_str()[1..]).unwrap_or_else(|| {
                            self.errors.push(
                                SyntaxError::new(spec_span, "bad format spec", "not understood")
                                    .with_help("a spec is [[fill]align][0][width][.decimals], as in `{x:>8.2}`"),
                            );
                            FormatSpec::default()
                        })
                    });
                    parts.push(InterpPart::Expr(expr, spec));
                }
            }
        }
        match parts.is_empty() {
            true => ExprKind::Str(text),
            false => {
                if !text.is_empty() {
                    parts.push(InterpPart::Text(text));
                }
                ExprKind::Interp(parts)
            }
        }
    }
}

fn unescape(escape: &str) -> Option<char> {
    let body = escape.strip_prefix('\\')?;
    if let Some(hex) = body.strip_prefix("u{").and_then(|h| h.strip_suffix('}')) {
        return u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
    }
    match body {
        "n" => Some('\n'),
        "t" => Some('\t'),
        "r" => Some('\r'),
        "0" => Some('\0'),
        "\\" => Some('\\'),
        "\"" => Some('"'),
        "{" => Some('{'),
        "}" => Some('}'),
        _ => None,
    }
}

/// `[[fill]align][0][width][.precision][f|d|s]`.
fn parse_format_spec(text: &str) -> Option<FormatSpec> {
    let mut spec = FormatSpec::default();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let align_of = |c: char| match c {
        '<' => Some(Align::Left),
        '>' => Some(Align::Right),
        '^' => Some(Align::Center),
        _ => None,
    };
    if chars.len() >= 2
        && let Some(a) = align_of(chars[1])
    {
        spec.fill = Some(chars[0]);
        spec.align = Some(a);
        i = 2;
    } else if let Some(a) = chars.first().and_then(|&c| align_of(c)) {
        spec.align = Some(a);
        i = 1;
    }
    if chars.get(i) == Some(&'0') {
        spec.zero = true;
        i += 1;
    }
    let start = i;
    while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
        i += 1;
    }
    if i > start {
        spec.width = chars[start..i].iter().collect::<String>().parse().ok()?;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        let start = i;
        while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            return None;
        }
        spec.precision = Some(chars[start..i].iter().collect::<String>().parse().ok()?);
    }
    if matches!(chars.get(i), Some('f' | 'd' | 's')) {
        i += 1;
    }
    (i == chars.len() && spec.width <= 1000 && spec.precision.is_none_or(|p| p <= 100)).then_some(spec)
}

/// A pest failure in words: what was found, and what could have come there.
fn friendly(source: &str, error: pest::error::Error<Rule>) -> SyntaxError {
    let rule_at = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let attempts = error.parse_attempts();
    // The furthest point the parser reached is where the text went wrong.
    let at = attempts.as_ref().map_or(rule_at, |a| a.max_position.max(rule_at));
    let mut rules: Vec<Rule> = Vec::new();
    if at == rule_at
        && let ErrorVariant::ParsingError { positives, .. } = &error.variant
    {
        rules.extend(positives);
    }
    let mut tokens: Vec<String> = Vec::new();
    if let Some(attempts) = &attempts {
        rules.extend(attempts.call_stacks.iter().filter_map(|c| c.parent));
        tokens = attempts.expected_tokens().iter().map(|t| t.to_string()).collect();
    }
    rules.sort_by_key(|r| rule_rank(*r));
    let mut expected: Vec<String> = Vec::new();
    let words = rules.iter().filter_map(|r| rule_word(*r)).map(str::to_string);
    // Operators are summed up as "an operator"; only closing and
    // separating punctuation is worth naming one by one.
    let marks = tokens
        .iter()
        .map(|t| t.trim())
        .filter(|t| [")", "]", "}", ",", ":", "=", "{", "=>", "\""].contains(t))
        .map(|t| format!("`{t}`"));
    for word in words.chain(marks) {
        if !expected.contains(&word) {
            expected.push(word);
        }
    }
    // "an expression" already covers the brackets and quotes that start one.
    if expected.iter().any(|w| w == "an expression") {
        expected.retain(|w| !["a name", "`\"`", "`{`"].contains(&w.as_str()));
    }
    expected.truncate(5);
    let label = match expected.len() {
        0 => "unexpected here".to_string(),
        1 => format!("expected {}", expected[0]),
        n => format!("expected {} or {}", expected[..n - 1].join(", "), expected[n - 1]),
    };
    // A reserved word where a name belongs: `let get = 1`, `fn f(set)`.
    if let Some((start, word)) = word_before(source, at).filter(|(_, w)| super::KEYWORDS.contains(w))
        && (expected.is_empty() || expected.iter().any(|w| w == "a name"))
        && names_come_after(&source[..start])
    {
        let span = Span::new(start, start + word.len());
        return SyntaxError::new(span, format!("`{word}` is a reserved word"), "not usable as a name")
            .with_help(format!("choose another name, such as `{word}_` or `my_{word}`"));
    }
    let at_end = at >= source.len();
    if let Some(mut hint) = super::hints::for_failure(source, at) {
        hint.incomplete = at_end;
        return hint;
    }
    let found = describe_found(source, at);
    let len = match at_end || found == "newline" {
        true => 0,
        false => source[at..].chars().next().map_or(0, char::len_utf8),
    };
    let mut err = SyntaxError::new(Span::new(at, at + len), format!("unexpected {found}"), label);
    err.incomplete = at_end;
    if at_end {
        // Point at the bracket left open, where the fix belongs.
        let last = source.trim_end().len();
        err.span = Span::new(last, last);
        if let Some((open, bracket)) = super::nesting::unclosed(source) {
            err.message = format!("`{bracket}` is never closed");
            err.span = Span::new(open, open + 1);
            err.label = "opened here".to_string();
            let close = match bracket {
                '(' => ')',
                '[' => ']',
                _ => '}',
            };
            err.help = Some(format!("add the matching `{close}`"));
        }
    }
    err
}

/// The word that ends just before `at` (spaces skipped), with its start.
pub(super) fn word_before(source: &str, at: usize) -> Option<(usize, &str)> {
    let head = source.get(..at)?.trim_end_matches([' ', '\t']);
    let start =
        head.char_indices().rev().take_while(|(_, c)| c.is_alphanumeric() || *c == '_').last().map(|(i, _)| i)?;
    Some((start, &head[start..]))
}

/// Whether text ending in `head` is followed by a name being declared.
fn names_come_after(head: &str) -> bool {
    let head = head.trim_end();
    head.ends_with(['(', ',', '['])
        || word_before(head, head.len()).is_some_and(|(_, w)| ["let", "fn", "for", "catch"].contains(&w))
}

fn describe_found(source: &str, at: usize) -> String {
    let rest = &source[at.min(source.len())..];
    match rest.chars().next() {
        None => "end of input".to_string(),
        Some('\n' | '\r') => "newline".to_string(),
        Some(c) if c.is_alphanumeric() || c == '_' => {
            let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            format!("`{word}`")
        }
        Some(c) => format!("`{c}`"),
    }
}

/// Words come before punctuation in the list of what was expected.
fn rule_rank(rule: Rule) -> u8 {
    match rule {
        Rule::expr | Rule::expr_nl | Rule::ident => 0,
        Rule::EOI => 2,
        _ => 1,
    }
}

/// How a grammar rule is named to a person; `None` for rules that add
/// nothing to the message (their tokens are listed instead).
fn rule_word(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr
        | Rule::expr_nl
        | Rule::postfix_expr
        | Rule::int
        | Rule::float
        | Rule::string
        | Rule::lambda
        | Rule::list
        | Rule::map
        | Rule::list_comp
        | Rule::map_comp
        | Rule::op_neg
        | Rule::op_not
        | Rule::kw_true
        | Rule::kw_false
        | Rule::kw_nil => "an expression",
        Rule::ident | Rule::field_name => "a name",
        Rule::list_pattern => "`[`",
        Rule::block => "`{`",
        Rule::params => "`(`",
        Rule::arrow_body => "`=>`",
        Rule::assign_op => "`=`",
        Rule::op_or
        | Rule::op_and
        | Rule::op_in
        | Rule::op_not_in
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_lt
        | Rule::op_le
        | Rule::op_gt
        | Rule::op_ge
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::op_floordiv
        | Rule::op_mod
        | Rule::op_pow => "an operator",
        Rule::EOI => "the end of the statement",
        Rule::kw_in => "`in`",
        Rule::kw_else => "`else`",
        Rule::kw_catch => "`catch`",
        Rule::kw_finally => "`finally`",
        Rule::catch_clause => "`catch`",
        Rule::finally_clause => "`finally`",
        Rule::named_arg => "an argument",
        Rule::str_interp | Rule::str_text | Rule::str_escape | Rule::str_braces | Rule::str_rbrace => {
            "more of the string or `\"`"
        }
        _ => return None,
    })
}

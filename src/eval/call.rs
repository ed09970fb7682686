//! Calls: binding arguments to parameters and running a function's frame.

use std::sync::Arc;

use super::{Ctrl, Interp, MAX_DEPTH, R, Up, fault_at, traced};
use crate::resolve::arity_message;
use crate::resolve::ir::{Args, FnDef};
use crate::runtime::Value;
use crate::runtime::error::{ErrorValue, Kind, type_error};
use crate::runtime::value::VarCell;
use crate::syntax::Span;

/// Evaluated arguments: positional, then `name: value` pairs.
#[derive(Default)]
pub struct ArgValues {
    pub positional: Vec<Value>,
    pub named: Vec<(Arc<str>, Value)>,
}

impl ArgValues {
    pub fn positional(values: Vec<Value>) -> ArgValues {
        ArgValues { positional: values, named: Vec::new() }
    }

    /// Takes the named argument `name`, if given.
    pub fn take_named(&mut self, name: &str) -> Option<Value> {
        let i = self.named.iter().position(|(n, _)| &**n == name)?;
        Some(self.named.remove(i).1)
    }

    /// Fails if any named argument is left that the callee does not take.
    pub fn no_more_named(&self, callee: &str) -> Result<(), Box<ErrorValue>> {
        match self.named.first() {
            Some((name, _)) => Err(type_error(format!("`{callee}` has no parameter `{name}`"))),
            None => Ok(()),
        }
    }
}

impl<'p> Interp<'p> {
    pub(crate) fn eval_args(&mut self, args: &Args, up: Up) -> R<ArgValues> {
        let mut values = ArgValues {
            positional: Vec::with_capacity(args.positional.len()),
            named: Vec::with_capacity(args.named.len()),
        };
        for arg in &args.positional {
            values.positional.push(self.eval(arg, up)?);
        }
        for (name, arg) in &args.named {
            values.named.push((name.clone(), self.eval(arg, up)?));
        }
        Ok(values)
    }

    /// Calls `def` with arguments still to evaluate. The common case, all
    /// positional and exactly as many as parameters, evaluates them
    /// straight into the new frame.
    #[inline]
    pub(crate) fn call_args(&mut self, def: &FnDef, upvals: Up, args: &Args, up: Up, span: Span) -> R<Value> {
        if args.named.is_empty() && args.positional.len() == def.params.len() {
            let base = self.stack.len();
            for arg in &args.positional {
                match self.operand(arg, up) {
                    Ok(value) => self.stack.push(value),
                    Err(e) => {
                        self.stack.truncate(base);
                        return Err(e);
                    }
                }
            }
            return self.enter(def, upvals, base, span, false);
        }
        let values = self.eval_args(args, up)?;
        self.call_def(def, upvals, values, span)
    }

    pub(crate) fn call_value_args(&mut self, callee: &Value, args: &Args, up: Up, span: Span) -> R<Value> {
        match callee {
            Value::Func(closure) => self.call_args(&closure.def, &closure.upvalues, args, up, span),
            _ => {
                let values = self.eval_args(args, up)?;
                self.call_value(callee, values, span)
            }
        }
    }

    /// Calls any callable value with evaluated arguments.
    pub fn call_value(&mut self, callee: &Value, args: ArgValues, span: Span) -> R<Value> {
        match callee {
            Value::Func(closure) => self.call_def(&closure.def, &closure.upvalues, args, span),
            Value::Builtin(b) => self.builtin(*b, args, span).map_err(|c| c.at(span)),
            other => Err(fault_at(type_error(format!("{} is not a function", other.type_name())), span)),
        }
    }

    /// Binds evaluated arguments to `def`'s parameters and runs it.
    pub(crate) fn call_def(&mut self, def: &FnDef, upvals: Up, args: ArgValues, span: Span) -> R<Value> {
        let fail = |message: String| Err(fault_at(type_error(message), span));
        let given = args.positional.len();
        if given > def.params.len() {
            return fail(arity_message(&def.name, def.required(), def.params.len(), given));
        }
        let base = self.stack.len();
        self.stack.extend(args.positional);
        self.stack.resize(base + def.params.len(), Value::Unset);
        for (name, value) in args.named {
            let slot = match def.param_index(&name) {
                Some(i) if matches!(self.stack[base + i], Value::Unset) => base + i,
                Some(_) => {
                    self.stack.truncate(base);
                    return fail(format!("argument `{name}` given twice"));
                }
                None => {
                    self.stack.truncate(base);
                    return fail(format!("`{}` has no parameter `{name}`", def.name));
                }
            };
            self.stack[slot] = value;
        }
        let missing: Vec<&str> = def
            .params
            .iter()
            .enumerate()
            .filter(|(i, p)| p.default.is_none() && matches!(self.stack[base + i], Value::Unset))
            .map(|(_, p)| &*p.name)
            .collect();
        if !missing.is_empty() {
            self.stack.truncate(base);
            return fail(format!("`{}` is missing argument `{}`", def.name, missing.join("`, `")));
        }
        self.enter(def, upvals, base, span, true)
    }

    /// The error for a call past the recursion limit or the native stack.
    #[cold]
    #[inline(never)]
    pub(crate) fn too_deep(&mut self, def: &FnDef, base: usize, span: Span) -> Ctrl {
        self.stack.truncate(base);
        let why = match self.depth >= MAX_DEPTH {
            true => format!("`{}` went past {MAX_DEPTH} nested calls", def.name),
            false => format!("calling `{}` would overflow this task's stack", def.name),
        };
        let error = ErrorValue::new(Kind::Resource, format!("recursion too deep: {why}"))
            .with_help("a recursive function needs a case that stops calling itself; deep ones can become loops");
        fault_at(error, span)
    }

    /// Runs `def`'s body in a frame starting at `base`, where the
    /// arguments already are.
    pub(crate) fn enter(&mut self, def: &FnDef, upvals: Up, base: usize, span: Span, defaults: bool) -> R<Value> {
        if self.depth >= MAX_DEPTH || crate::runtime::stack::below(self.stack_floor) {
            return Err(self.too_deep(def, base, span));
        }
        self.stack.grow_to(base + def.code.frame as usize);
        let saved = std::mem::replace(&mut self.base, base);
        self.depth += 1;
        let mut result = Ok(());
        if defaults {
            result = self.fill_defaults(def, upvals);
        }
        if result.is_ok() && !def.cell_params.is_empty() {
            self.cell_params(def, base);
        }
        let result = match result {
            Ok(()) => self.run_code(def, upvals),
            Err(e) => Err(e),
        };
        self.depth -= 1;
        self.base = saved;
        self.stack.truncate(base);
        match result {
            Ok(value) | Err(Ctrl::Return(value)) => Ok(value),
            Err(other) => Err(traced(other, &def.name, span)),
        }
    }

    /// Moves the parameters a closure captures, in the frame at `base`,
    /// into cells (callers test that there are any: most functions have none).
    #[cold]
    pub(crate) fn cell_params(&mut self, def: &FnDef, base: usize) {
        for &(i, fixed) in &def.cell_params {
            let slot = base + i as usize;
            let value = std::mem::take(&mut self.stack[slot]);
            self.stack[slot] = Value::Cell(Arc::new(VarCell::bound(value, fixed)));
        }
    }

    /// Evaluates the defaults of parameters not given, in the callee's
    /// frame, so a default may use the parameters before it.
    fn fill_defaults(&mut self, def: &FnDef, upvals: Up) -> R<()> {
        for (i, param) in def.params.iter().enumerate() {
            if let (Some(default), Value::Unset) = (&param.default, &self.stack[self.base + i]) {
                let value = self.eval(default, upvals)?;
                self.stack[self.base + i] = value;
            }
        }
        Ok(())
    }
}

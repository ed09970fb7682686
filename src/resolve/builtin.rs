//! The names the language predefines. A script may shadow any of them
//! with its own `let` or `fn`; their behaviour lives in `eval::builtins`.

macro_rules! builtins {
    ($($variant:ident $name:literal $min:literal $max:expr,)*) => {
        /// A predefined function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Builtin {
            $($variant,)*
        }

        impl Builtin {
            pub const ALL: &[Builtin] = &[$(Builtin::$variant,)*];

            pub fn name(self) -> &'static str {
                match self {
                    $(Builtin::$variant => $name,)*
                }
            }

            /// Least and most positional arguments (`usize::MAX`: any number).
            pub fn arity(self) -> (usize, usize) {
                match self {
                    $(Builtin::$variant => ($min, $max),)*
                }
            }
        }
    };
}

const ANY: usize = usize::MAX;

builtins! {
    Print "print" 0 ANY,
    Eprint "eprint" 0 ANY,
    Str "str" 0 1,
    Int "int" 1 1,
    Float "float" 1 1,
    Bool "bool" 1 1,
    List "list" 0 1,
    Type "type" 1 1,
    Len "len" 1 1,
    Range "range" 1 3,
    Abs "abs" 1 1,
    Min "min" 1 ANY,
    Max "max" 1 ANY,
    Sum "sum" 1 1,
    Round "round" 1 2,
    Sorted "sorted" 1 1,
    Reversed "reversed" 1 1,
    Enumerate "enumerate" 1 1,
    Zip "zip" 2 ANY,
    Keys "keys" 1 1,
    Values "values" 1 1,
    Error "error" 1 2,
    Assert "assert" 1 2,
    Sleep "sleep" 1 1,
    Time "time" 0 0,
    Now "now" 0 0,
    Random "random" 0 0,
    Randint "randint" 2 2,
    Input "input" 0 1,
    Args "args" 0 0,
    Env "env" 1 2,
    Exit "exit" 0 1,
    Pid "pid" 0 0,
    Ppid "ppid" 0 0,
    CpuCount "cpu_count" 0 0,
    ReadFile "read_file" 1 1,
    WriteFile "write_file" 2 2,
    AppendFile "append_file" 2 2,
    Bytes "bytes" 0 1,
    ReadBytes "read_bytes" 1 1,
    WriteBytes "write_bytes" 2 2,
    AppendBytes "append_bytes" 2 2,
    ListDir "list_dir" 0 1,
    Mkdir "mkdir" 1 1,
    Exists "exists" 1 1,
    Remove "remove" 1 1,
    PathJoin "path_join" 1 usize::MAX,
    Basename "basename" 1 1,
    Dirname "dirname" 1 1,
    Ext "ext" 1 1,
    AbsPath "abs_path" 1 1,
    FileSize "file_size" 1 1,
    IsFile "is_file" 1 1,
    IsDir "is_dir" 1 1,
    Walk "walk" 1 1,
    Rename "rename" 2 2,
    CopyFile "copy_file" 2 2,
    RemoveTree "remove_tree" 1 1,
    Run "run" 1 ANY,
    Sh "sh" 1 1,
    JsonEncode "json_encode" 1 1,
    JsonDecode "json_decode" 1 1,
    Queue "queue" 0 2,
    Lock "lock" 0 0,
    Semaphore "semaphore" 0 2,
    Condition "condition" 0 1,
    Event "event" 0 0,
    Pipe "pipe" 0 0,
    Pool "pool" 0 1,
    Shared "shared" 1 1,
    ThreadLocal "threadlocal" 0 0,
    Current "current" 0 0,
    Active "active" 0 0,
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.iter().copied().find(|b| b.name() == name)
    }
}

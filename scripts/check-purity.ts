/**
 * Static purity check for functions handed to twinflow transforms.
 *
 * `jit`, `grad`, `valueAndGrad`, `vjp`, `jvp` and `vmap` trace their function argument (jit caches
 * the trace), so a side effect inside it runs at trace time (not per call, nor per example) and a
 * nondeterministic value (Math.random(), Date.now(), ...) is frozen into the trace as a constant.
 * This checker finds both statically with ts-morph.
 *
 * Usage: npx tsx scripts/check-purity.ts [dirs or files...]   (default: models examples)
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Node,
  Project,
  SyntaxKind,
  ts,
  type ArrowFunction,
  type CallExpression,
  type FunctionDeclaration,
  type FunctionExpression,
  type MethodDeclaration,
  type SourceFile,
} from 'ts-morph';

export type ViolationKind =
  | 'Math.random'
  | 'Date.now'
  | 'performance.now'
  | 'new Date'
  | 'crypto.getRandomValues'
  | 'crypto.randomUUID'
  | 'outer-write';

export interface Violation {
  /** Path of the offending file, relative to `options.cwd`, with forward slashes. */
  file: string;
  /** 1-based position of the offending expression. */
  line: number;
  column: number;
  /** Transform (jit, grad, ...) whose traced function reaches the violation. */
  transform: string;
  kind: ViolationKind;
  message: string;
}

export interface CheckPurityOptions {
  /** Names of the tracing transforms whose first argument is checked. */
  transforms?: readonly string[];
  /** Base directory for the reported `file` paths (default: process.cwd()). */
  cwd?: string;
}

type TracedFn = ArrowFunction | FunctionExpression | FunctionDeclaration | MethodDeclaration;

const DEFAULT_TRANSFORMS = ['jit', 'grad', 'valueAndGrad', 'vjp', 'jvp', 'vmap'];

/** Calls whose result differs between calls; matched on the callee text (globalThis. etc. stripped). */
const NONDETERMINISTIC: Readonly<Record<string, ViolationKind>> = {
  'Math.random': 'Math.random',
  'Date.now': 'Date.now',
  'performance.now': 'performance.now',
  'crypto.getRandomValues': 'crypto.getRandomValues',
  'crypto.randomUUID': 'crypto.randomUUID',
};

const MUTATORS = new Set(['push', 'pop', 'splice', 'shift', 'unshift', 'set', 'add', 'delete', 'clear', 'sort', 'reverse', 'fill']);
// Tensors legitimately have functional `add`/`set`/`sort`..., so mutators only count on builtin
// collections; when the receiver type is unknown (any) only these array-only names are trusted.
const ARRAY_ONLY_MUTATORS = new Set(['push', 'pop', 'splice', 'shift', 'unshift']);
const COLLECTION_TYPES = new Set([
  'Array', 'Map', 'Set', 'WeakMap', 'WeakSet',
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
  'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
]);

/** Recursively lists the .ts files (not .d.ts) under the given files/dirs; missing paths are skipped. */
export function collectFiles(paths: readonly string[]): string[] {
  const out = new Set<string>();
  const walk = (p: string): void => {
    if (!existsSync(p)) return;
    if (statSync(p).isDirectory()) {
      for (const entry of readdirSync(p)) if (entry !== 'node_modules') walk(path.join(p, entry));
    } else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) {
      out.add(path.resolve(p));
    }
  };
  paths.forEach(walk);
  return [...out].sort();
}

/** Strips wrappers that don't change which value/function an expression denotes. */
function unwrap(node: Node): Node {
  while (
    Node.isParenthesizedExpression(node) || Node.isAsExpression(node) || Node.isNonNullExpression(node) ||
    Node.isSatisfiesExpression(node) || Node.isTypeAssertion(node)
  ) {
    node = node.getExpression();
  }
  return node;
}

/** `=`, `+=`, `??=`, ... (the compiler's own isAssignmentOperator is not in the public typings). */
const isAssignment = (op: SyntaxKind): boolean => op >= SyntaxKind.FirstAssignment && op <= SyntaxKind.LastAssignment;

/** Whether `inner` lies textually inside `outer` (declarations inside a traced function are its locals). */
function within(inner: Node, outer: Node): boolean {
  return inner.getSourceFile() === outer.getSourceFile() && inner.getPos() >= outer.getPos() && inner.getEnd() <= outer.getEnd();
}

/**
 * Resolves an expression denoting a function (inline, identifier, `obj.method`, imported name) to
 * its implementation, provided that lives in one of the analysed files.
 */
function resolveFunction(expr: Node, analysed: ReadonlySet<SourceFile>): TracedFn | undefined {
  const e = unwrap(expr);
  if (Node.isArrowFunction(e) || Node.isFunctionExpression(e)) return e;
  const name = Node.isPropertyAccessExpression(e) ? e.getNameNode() : e;
  if (!Node.isIdentifier(name)) return undefined;
  let symbol = name.getSymbol();
  if (symbol?.isAlias()) symbol = symbol.getAliasedSymbol() ?? symbol; // follow imports
  for (const decl of symbol?.getDeclarations() ?? []) {
    if (!analysed.has(decl.getSourceFile())) continue;
    // Overload signatures have no body; skip to the implementation.
    if ((Node.isFunctionDeclaration(decl) || Node.isMethodDeclaration(decl)) && decl.hasBody()) return decl;
    if (Node.isVariableDeclaration(decl) || Node.isPropertyAssignment(decl) || Node.isPropertyDeclaration(decl)) {
      const init = decl.getInitializer();
      const fn = init && unwrap(init);
      if (Node.isArrowFunction(fn) || Node.isFunctionExpression(fn)) return fn;
    }
  }
  return undefined;
}

/** Human-readable name of a function for messages: its own name or the variable/property it initialises. */
function fnName(fn: TracedFn): string | undefined {
  if (Node.isFunctionDeclaration(fn) || Node.isMethodDeclaration(fn) || Node.isFunctionExpression(fn)) {
    const name = fn.getName();
    if (name) return name;
  }
  const holder = fn.getParent();
  return Node.isVariableDeclaration(holder) || Node.isPropertyAssignment(holder) || Node.isPropertyDeclaration(holder)
    ? holder.getName()
    : undefined;
}

/** Returns the transform's canonical name if `call` is `jit(...)`, `tw.jit(...)`, or an aliased import of one. */
function transformName(call: CallExpression, names: ReadonlySet<string>): string | undefined {
  const callee = unwrap(call.getExpression());
  if (Node.isIdentifier(callee)) {
    // `import { jit as compile } from 'twinflow'` -> report as jit.
    const spec = callee.getSymbol()?.getDeclarations().find((d) => Node.isImportSpecifier(d));
    const name = Node.isImportSpecifier(spec) ? spec.getName() : callee.getText();
    return names.has(name) ? name : undefined;
  }
  if (Node.isPropertyAccessExpression(callee) && names.has(callee.getName())) {
    // Only on a namespace/default import (`tw.jit`), so e.g. `optimizer.grad(...)` is not mistaken for a transform.
    const ns = unwrap(callee.getExpression());
    const isImport = Node.isIdentifier(ns) &&
      (ns.getSymbol()?.getDeclarations() ?? []).some((d) => Node.isNamespaceImport(d) || Node.isImportClause(d));
    return isImport ? callee.getName() : undefined;
  }
  return undefined;
}

/** Whether `method` called on `receiver` mutates a builtin collection (checked via the receiver's type). */
function isCollectionMutation(receiver: Node, method: string): boolean {
  if (!MUTATORS.has(method)) return false;
  const type = receiver.getType().getNonNullableType();
  return (type.isUnion() ? type.getUnionTypes() : [type]).some((t) => {
    if (t.isAny() || t.isUnknown()) return ARRAY_ONLY_MUTATORS.has(method);
    const name = (t.getSymbol() ?? t.getAliasSymbol())?.getName();
    return t.isArray() || t.isTuple() || (name !== undefined && COLLECTION_TYPES.has(name));
  });
}

/**
 * Checks every function passed as first argument to a transform in the given files/dirs (relative
 * paths resolve against process.cwd()), following identifiers and calls into functions defined in
 * those files. Each side effect is reported once, at its own location, sorted by file/line/column.
 */
export function checkPurity(paths: string[], options: CheckPurityOptions = {}): Violation[] {
  const files = collectFiles(paths);
  if (files.length === 0) return [];
  const cwd = options.cwd ?? process.cwd();
  const transforms = new Set(options.transforms ?? DEFAULT_TRANSFORMS);
  const project = new Project({
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true,
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      types: [], // the check is syntactic + local types; don't load every @types package
      lib: ['lib.es2022.d.ts'],
    },
  });
  const sources = files.map((f) => project.addSourceFileAtPath(f));
  const analysed = new Set(sources);
  const rel = (sf: SourceFile) => path.relative(cwd, sf.getFilePath()).split(path.sep).join('/');
  const found = new Map<string, Violation>();

  for (const sf of sources) {
    for (const call of sf.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const transform = transformName(call, transforms);
      const arg = call.getArguments()[0];
      const root = transform && arg ? resolveFunction(arg, analysed) : undefined;
      if (!transform || !root) continue;
      const at = call.getSourceFile().getLineAndColumnAtPos(call.getStart());
      const site = `${transform}() at ${rel(call.getSourceFile())}:${at.line}:${at.column}`;
      const seen = new Set<Node>(); // cycle protection for recursive helpers

      const visit = (fn: TracedFn, via: readonly string[]): void => {
        if (seen.has(fn)) return;
        seen.add(fn);

        const report = (node: Node, kind: ViolationKind, what: string): void => {
          const nsf = node.getSourceFile();
          const { line, column } = nsf.getLineAndColumnAtPos(node.getStart());
          const file = rel(nsf);
          const key = `${file}:${line}:${column}:${kind}`;
          if (found.has(key)) return; // same spot reached from several transforms: report once
          const why = kind === 'outer-write'
            ? 'it runs once at trace time, not on every call'
            : 'the value is frozen into the cached trace';
          const path_ = via.length ? ` via ${via.join(' -> ')}` : '';
          found.set(key, { file, line, column, transform, kind, message: `${what} inside the function traced by ${site}${path_}: ${why}` });
        };

        /** Declared outside `fn` (captured, imported or global); parameters and locals of `fn` are inside. */
        const isOuter = (id: Node): boolean => {
          const parent = id.getParent();
          const symbol = Node.isShorthandPropertyAssignment(parent) ? parent.getValueSymbol() : id.getSymbol();
          const decls = symbol?.getDeclarations() ?? [];
          return !decls.some((d) => within(d, fn));
        };
        const isOwnParam = (id: Node): boolean =>
          (id.getSymbol()?.getDeclarations() ?? []).some((d) => {
            const param = Node.isParameterDeclaration(d) ? d : d.getFirstAncestorByKind(SyntaxKind.Parameter);
            return param?.getParent() === fn;
          });

        /** Property write / mutation through `obj.a[i]...`: bad if the base object is captured, `this`, or a parameter. */
        const checkMutation = (node: Node, base: Node, what: string): void => {
          let root = unwrap(base);
          while (Node.isPropertyAccessExpression(root) || Node.isElementAccessExpression(root)) root = unwrap(root.getExpression());
          if (Node.isThisExpression(root)) report(node, 'outer-write', `${what} mutates 'this'`);
          else if (Node.isIdentifier(root) && isOwnParam(root)) report(node, 'outer-write', `${what} mutates parameter '${root.getText()}' (caller state)`);
          else if (Node.isIdentifier(root) && isOuter(root)) report(node, 'outer-write', `${what} mutates captured '${root.getText()}'`);
          // Otherwise the base is a local or a fresh value (call result, literal): fine.
        };

        /** Assignment target: identifier, property/element access, or a destructuring pattern of those. */
        const checkTarget = (target: Node, node: Node): void => {
          const t = unwrap(target);
          if (Node.isIdentifier(t)) {
            if (isOuter(t)) report(node, 'outer-write', `assignment to captured variable '${t.getText()}'`);
          } else if (Node.isPropertyAccessExpression(t) || Node.isElementAccessExpression(t)) {
            checkMutation(node, t, `write to '${t.getText()}'`);
          } else if (Node.isArrayLiteralExpression(t)) {
            for (const el of t.getElements()) checkTarget(Node.isSpreadElement(el) ? el.getExpression() : el, node);
          } else if (Node.isObjectLiteralExpression(t)) {
            for (const p of t.getProperties()) {
              if (Node.isShorthandPropertyAssignment(p)) checkTarget(p.getNameNode(), node);
              else if (Node.isPropertyAssignment(p)) checkTarget(p.getInitializerOrThrow(), node);
              else if (Node.isSpreadAssignment(p)) checkTarget(p.getExpression(), node);
            }
          } else if (Node.isBinaryExpression(t)) {
            checkTarget(t.getLeft(), node); // destructuring default: `[a = 1] = xs`
          }
        };

        fn.forEachDescendant((node) => {
          if (Node.isCallExpression(node)) {
            const callee = unwrap(node.getExpression());
            const name = callee.getText().replace(/\s|\?/g, '').replace(/^(globalThis|window|self)\./, '');
            const kind = NONDETERMINISTIC[name];
            if (kind) report(node, kind, `${name}()`);
            if (Node.isPropertyAccessExpression(callee) && isCollectionMutation(callee.getExpression(), callee.getName())) {
              checkMutation(node, callee.getExpression(), `'${callee.getText()}()'`);
            }
            // Follow the callee and function-valued arguments (callbacks like xs.map(helper)) into
            // functions of the analysed files; ones declared inside `fn` are already walked here.
            for (const target of [callee, ...node.getArguments()]) {
              const next = resolveFunction(target, analysed);
              if (next && !within(next, fn)) visit(next, [...via, fnName(next) ?? target.getText()]);
            }
          } else if (Node.isNewExpression(node)) {
            // `new Date()` reads the clock; `new Date(ms)` is deterministic.
            const ctor = unwrap(node.getExpression()).getText().replace(/^(globalThis|window|self)\./, '');
            if (ctor === 'Date' && node.getArguments().length === 0) report(node, 'new Date', 'new Date()');
          } else if (Node.isBinaryExpression(node) && isAssignment(node.getOperatorToken().getKind())) {
            checkTarget(node.getLeft(), node);
          } else if (Node.isPrefixUnaryExpression(node) || Node.isPostfixUnaryExpression(node)) {
            const op = node.getOperatorToken();
            if (op === SyntaxKind.PlusPlusToken || op === SyntaxKind.MinusMinusToken) checkTarget(node.getOperand(), node);
          } else if (Node.isDeleteExpression(node)) {
            checkTarget(node.getExpression(), node);
          }
        });
      };

      visit(root, []);
    }
  }

  return [...found.values()].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
}

function main(args: string[]): number {
  const files = collectFiles(args.length ? args : ['models', 'examples']);
  const violations = checkPurity(files);
  for (const v of violations) console.log(`${v.file}:${v.line}:${v.column}: ${v.message}`);
  if (violations.length === 0) console.log(`no side effects found in ${files.length} files`);
  else console.error(`${violations.length} side effect(s) in functions passed to twinflow transforms`);
  return violations.length ? 1 : 0;
}

// CLI entry: only when executed directly (tsx puts the script path in argv[1]), not when imported.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}

// The benches' command-line options: `--name value` or `--name=value`, and bare `--flag`s. (The CLI and the
// scripts use commander; a bench reads two or three options and is bundled for the GPU machine as it is.)

export const args = process.argv.slice(2);

/** The value of option `name`, if given. */
export function opt(name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

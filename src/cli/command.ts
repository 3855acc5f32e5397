/**
 * One operator command of `hydra-mcp` (src/cli/main.ts). The npm scripts
 * (`npm run user -- …`, scripts/*.ts) run the same commands under another
 * name, so each usage text is written for the name it was called by.
 */
export interface CliCommand {
  /** The subcommand: `hydra-mcp <name> …`. */
  name: string;
  /** One line for `hydra-mcp --help`. */
  summary: string;
  /** The usage text, for `prog` as typed before the arguments ("hydra-mcp user", "npm run user --"). */
  usage(prog: string): string;
  /**
   * Run with the arguments after the subcommand; resolves to the exit code
   * (0 done, 1 bad input or failure, 2 usage error) and never rejects: a
   * failure is printed as one readable line.
   */
  run(argv: string[], prog: string): Promise<number>;
}

/** A failure nothing more specific caught (configuration, database): one line, no stack. */
export const describeFailure = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** A command's `run`: its main, with a failure nothing more specific caught printed as `error: <message>`, exit 1. */
export const printingFailures =
  (main: (argv: string[], prog: string) => Promise<number>): CliCommand['run'] =>
  (argv, prog) =>
    main(argv, prog).catch((e: unknown) => {
      console.error(`error: ${describeFailure(e)}`);
      return 1;
    });

/**
 * Leave with `code` once what is queued on stdout and stderr is written
 * (pipes may be asynchronous), without waiting for idle keep-alive sockets.
 */
export function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

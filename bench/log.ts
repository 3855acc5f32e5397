/** One line of the bench's progress on stderr, stamped with the time of day. */
export const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

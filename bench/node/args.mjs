// The command line of a transfer script: its options parsed, and any mistake answered with the
// script's usage and exit status 2.
import { parseArgs } from 'node:util';

export function commandLine(program, usageLine, spec) {
  const usage = (message) => {
    console.error(`${program}: ${message}`);
    console.error(`usage: ${usageLine}`);
    process.exit(2);
  };
  let opts;
  try {
    opts = parseArgs({ options: spec }).values;
  } catch (err) {
    usage(err.message);
  }
  const positiveInt = (name) => {
    const n = Number(opts[name]);
    if (!Number.isInteger(n) || n <= 0) {
      usage(`--${name} wants a whole number above 0, not ${opts[name]}`);
    }
    return n;
  };
  return { opts, usage, positiveInt };
}

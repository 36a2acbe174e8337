// The `poplar` executable: runs the daemon (or a subcommand) and exits with its status.
import { main } from './poplar.js';

process.exitCode = await main(process.argv.slice(2));

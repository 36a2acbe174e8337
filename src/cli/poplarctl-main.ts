// The `poplarctl` executable.
import { poplarctl } from './poplarctl.js';

process.exitCode = await poplarctl(process.argv.slice(2));

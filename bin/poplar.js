#!/usr/bin/env node
import { main } from '../build/src/cli/poplar.js';

process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
import '../build/src/cli/poplarctl-main.js';

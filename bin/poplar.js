#!/usr/bin/env node
import '../build/src/cli/main.js';

import { Agent, Mastra } from '@mastra/core';

export const mastra = new Mastra({
  serviceName: "support-bot",
  agents: {
    "support": new Agent({ name: "support", instructions: "You answer customer questions about orders and refunds." }),
    "triage": new Agent({ name: "triage", instructions: "You sort incoming tickets by urgency." }),
  },
});

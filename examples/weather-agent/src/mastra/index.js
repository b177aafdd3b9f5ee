import { Agent, Mastra } from '@mastra/core';

export const mastra = new Mastra({
  serviceName: "weather-agent",
  agents: {
    "weather": new Agent({ name: "weather", instructions: "You answer questions about the weather." }),
    "forecaster": new Agent({ name: "forecaster", instructions: "You give a five-day forecast." }),
  },
});

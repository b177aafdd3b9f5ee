import { createStep, createWorkflow } from '@mastra/core/workflows';
import { z } from 'zod';

const readCity = createStep({
  id: 'read-city',
  inputSchema: z.object({ city: z.string() }),
  outputSchema: z.object({ city: z.string(), letters: z.number() }),
  execute: async ({ inputData, mastra }) => {
    const logger = mastra.getLogger();
    logger.info('forecast: reading the city', { city: inputData.city });
    return { city: inputData.city, letters: inputData.city.length };
  },
});

const forecast = createStep({
  id: 'forecast',
  inputSchema: z.object({ city: z.string(), letters: z.number() }),
  outputSchema: z.object({ forecast: z.string() }),
  execute: async ({ inputData, mastra }) => {
    const logger = mastra.getLogger();
    if (inputData.letters > 6) {
      logger.warn('forecast: a long city name, guessing', { letters: inputData.letters });
    }
    logger.error('forecast: no weather service configured, answering from the almanac');
    return { forecast: `${inputData.city}: sun, ${10 + inputData.letters} degrees` };
  },
});

export const forecastWorkflow = createWorkflow({
  id: 'forecast',
  inputSchema: z.object({ city: z.string() }),
  outputSchema: z.object({ forecast: z.string() }),
})
  .then(readCity)
  .then(forecast)
  .commit();

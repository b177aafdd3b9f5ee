import { Mastra } from '@mastra/core';
import { PinoLogger } from '@mastra/loggers';
import { CloudExporter, MastraPlatformExporter, Observability } from '@mastra/observability';
import { forecastWorkflow } from './workflows/forecast';

// Which exporter sends traces, logs and metrics to the platform. The platform sets
// both exporters' variables (MASTRA_CLOUD_* and MASTRA_PLATFORM_*); nothing else
// here knows about it. Exporters batch for up to maxBatchWaitMs (5,000 ms by
// default): EXAMPLE_BATCH_WAIT_MS lowers it.
const exporter = process.env.EXAMPLE_EXPORTER ?? 'default';
const maxBatchWaitMs = Number(process.env.EXAMPLE_BATCH_WAIT_MS ?? 5000);

function observability(): Observability {
  if (exporter === 'cloud' || exporter === 'platform') {
    const instance =
      exporter === 'cloud'
        ? new CloudExporter({ maxBatchWaitMs })
        : new MastraPlatformExporter({ maxBatchWaitMs });
    return new Observability({
      configs: { platform: { serviceName: 'mastra-real', exporters: [instance] } },
    });
  }
  return new Observability({ default: { enabled: true } });
}

export const mastra = new Mastra({
  workflows: { forecast: forecastWorkflow },
  logger: new PinoLogger({ name: 'mastra-real', level: 'info' }),
  observability: observability(),
});

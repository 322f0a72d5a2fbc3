import { StrictMode, Suspense } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter, useNavigate, useRoutes } from 'react-router';
import { i18nReady } from './i18n/index.js';
import { registerRouter } from './router.js';
import { routes } from './routes.js';
import { SessionProvider } from './session.js';
import { Loading } from './ui.js';
import './styles.css';

// The words of the language in use, before anything is drawn (one small chunk).
await i18nReady;

function Routes() {
  registerRouter(useNavigate());
  return useRoutes(routes);
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider>
      <Suspense fallback={<Loading />}>
        <BrowserRouter>
          <Routes />
        </BrowserRouter>
      </Suspense>
    </SessionProvider>
  </StrictMode>,
);

port module Main exposing (main)

{-| Timers on elmbox's virtual clock. Uses `Debug.log`, so it is compiled
without --optimize (a DEV build, which warns on load).

    event "hello" -> logs `event: "hello"`, answers {"received": "hello"} at
                     once and {"delayed": "hello"} 1000 ms later
    every 500 ms  -> {"tick": n, "posix": <Time.posixToMillis now>}

-}

import Json.Encode as Encode
import Process
import Task
import Time


port onEvent : (String -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


type alias Model =
    { ticks : Int }


type Msg
    = Event String
    | Delayed String
    | Tick Time.Posix


main : Program () Model Msg
main =
    Platform.worker
        { init = \_ -> ( { ticks = 0 }, Cmd.none )
        , update = update
        , subscriptions = \_ -> Sub.batch [ onEvent Event, Time.every 500 Tick ]
        }


update : Msg -> Model -> ( Model, Cmd Msg )
update msg model =
    case msg of
        Event text ->
            let
                _ =
                    Debug.log "event" text
            in
            ( model
            , Cmd.batch
                [ respond (Encode.object [ ( "received", Encode.string text ) ])
                , Task.perform (\_ -> Delayed text) (Process.sleep 1000)
                ]
            )

        Delayed text ->
            ( model, respond (Encode.object [ ( "delayed", Encode.string text ) ]) )

        Tick time ->
            let
                ticks =
                    model.ticks + 1
            in
            ( { ticks = ticks }
            , respond
                (Encode.object
                    [ ( "tick", Encode.int ticks )
                    , ( "posix", Encode.int (Time.posixToMillis time) )
                    ]
                )
            )
